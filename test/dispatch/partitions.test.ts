import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { untilChild } from '../helpers/process.ts'
import { eventually } from '../helpers/worker.ts'
import { type PartitionsFixture, partitionsFixture } from './partitions-fixture.ts'

let f: PartitionsFixture

before(async () => {
  f = await partitionsFixture(6)
})

after(() => f?.close())

test('several workers dispatch at once; each partition has exactly one leader; a killed leader is taken over', async () => {
  const [a, b, c] = [await f.startWorker(), await f.startWorker(), await f.startWorker()]
  const held = await untilChild(
    a,
    () => f.sharedBy(3),
    'three workers sharing six partitions, one leader each',
  )
  // Every partition lock is held on a listener connection, never on a pooled one.
  const { rows } = await f.db.pool.query<{ app: string }>(
    `select distinct application_name as app from pg_stat_activity where pid = any($1::int[])`,
    [[...held.values()].flat()],
  )
  assert.deepEqual(
    rows.map((r) => r.app),
    ['pg-observers-listener'],
  )

  await f.db.pool.query('insert into counters select g, 0 from generate_series(1, 40) g')
  await eventually(() => f.distinctBodies() >= 40, 60_000, 'the first 40 deliveries')

  await f.kill(b)
  const after = await untilChild(a, () => f.sharedBy(2), 'the two survivors leading all six partitions')
  const pidsBefore = new Set([...held.values()].flat())
  assert.ok(
    [...after.values()].flat().every((p) => pidsBefore.has(p)),
    'the survivors took over; no new session appeared',
  )
  await f.db.pool.query('update counters set n = 1')
  await eventually(() => f.distinctBodies() >= 80, 60_000, 'the 40 updates after the kill')
  const order = f.receivedOrder()
  assert.equal(order.size, 40)
  for (const [id, ns] of order) assert.deepEqual(ns, [0, 1], `row ${id}`)
  await f.kill(a)
  await f.kill(c)
})
