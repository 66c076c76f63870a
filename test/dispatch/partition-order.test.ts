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

test('order per row holds for an ordered observer under partitioned dispatch while leaders are killed and the partition count changes', async () => {
  const rows = 20
  const updates = 24
  let survivors = [await f.startWorker(), await f.startWorker()]
  await untilChild(survivors[0]!, () => f.sharedBy(2), 'two workers sharing the partitions')
  await f.db.pool.query('insert into counters select g, 0 from generate_series(1, $1::int) g', [rows])
  for (let n = 1; n <= updates; n++) {
    // Row by row in their own transactions, so rows of every partition interleave in the log.
    for (let id = 1; id <= rows; id++)
      await f.db.pool.query('update counters set n = $1 where id = $2', [n, id])
    if (n === 8 || n === 16) {
      // A leader dies mid-stream, its partitions pass on, and a worker with another partition
      // count joins, as in a rolling change of OBSERVERS_DISPATCH_PARTITIONS: the new count
      // dispatches once the last worker with the old one is gone (at the second kill).
      const [dying, ...rest] = survivors
      await f.kill(dying!)
      survivors = [...rest, await f.startWorker({ OBSERVERS_DISPATCH_PARTITIONS: '4' })]
    }
  }
  const total = rows * (updates + 1)
  await eventually(() => f.distinctBodies() >= total, 120_000, `all ${total} deliveries`)
  const expected = Array.from({ length: updates + 1 }, (_, n) => n)
  const order = f.receivedOrder()
  assert.equal(order.size, rows)
  for (const [id, ns] of order) assert.deepEqual(ns, expected, `row ${id} in commit order`)
  for (const w of survivors) await f.kill(w)
})
