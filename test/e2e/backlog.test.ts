import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { TestDatabase } from '../helpers/db.ts'
import { type EventsFixture, eventsFixture } from '../helpers/events.ts'
import type { Receiver } from '../helpers/receiver.ts'
import { changesSettled } from '../helpers/settled.ts'
import { runWorker } from '../helpers/worker.ts'

let fixture: EventsFixture
let db: TestDatabase
let receiver: Receiver
let dir: string

before(async () => {
  fixture = await eventsFixture()
  ;({ db, receiver, dir } = fixture)
})

after(() => fixture?.close())

test('changes committed while no worker runs are all delivered once it starts', async () => {
  // The first start watches the table; then the worker is stopped while rows are committed.
  const first = await runWorker(db.url, dir)
  await first.stop()
  await db.pool.query(`insert into events select g, 'p' || g from generate_series(1, 1000) g`)
  const second = await runWorker(db.url, dir)
  try {
    // Bounds on a failure only: beside a second suite on a loaded machine, 1000 deliveries took
    // over a minute.
    await receiver.waitFor(1000, 180_000)
    await changesSettled(db.pool, 'public.events', undefined, 180_000)
    const ids = receiver.requests.map((r) => JSON.parse(r.body).after.id as number)
    assert.equal(ids.length, 1000, 'each change delivered exactly once')
    assert.equal(new Set(ids).size, 1000)
    const { rows } = await db.pool.query('select count(*)::int as n from observers.change_pending')
    assert.equal(rows[0].n, 0)
  } finally {
    await second.stop()
  }
})

test('two workers on one database deliver each change once', async () => {
  receiver.requests.length = 0
  const a = await runWorker(db.url, dir)
  const b = await runWorker(db.url, dir)
  try {
    for (let i = 0; i < 20; i++) {
      await db.pool.query(`insert into events select g, 'x' from generate_series($1::int, $1::int + 24) g`, [
        2000 + i * 25,
      ])
    }
    await receiver.waitFor(500, 180_000)
    await changesSettled(db.pool, 'public.events', undefined, 180_000)
    const ids = receiver.requests.map((r) => r.headers['content-length'] && JSON.parse(r.body).after.id)
    assert.equal(ids.length, 500)
    assert.equal(new Set(ids).size, 500)
    const executed = [a, b].map((w) => w.logs.records.filter((r) => r.outcome === 'success').length)
    assert.equal(executed[0]! + executed[1]!, 500)
  } finally {
    await a.stop()
    await b.stop()
  }
})
