import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { queueName } from '../../src/queue/boss.ts'
import { type EventsFixture, eventsFixture } from '../helpers/events.ts'
import { eventually, runWorker, type TestWorker } from '../helpers/worker.ts'

// A job leased in its dispatch transaction starts in it: pg-boss's created_on and our started_on
// are both that transaction's now(). A fetched job starts in a later transaction.
const jobsOf = async (fixture: EventsFixture) => {
  const { rows } = await fixture.db.pool.query<{ id: number; leased: boolean; state: string }>(
    `select (data -> 'event' -> 'after' ->> 'id')::int as id, started_on = created_on as leased, state
       from pgboss.job where name = $1 order by 1`,
    [queueName('webhook', 'plain')],
  )
  return rows
}

const delivered = (fixture: EventsFixture) =>
  fixture.receiver.requests.map((r) => JSON.parse(r.body).after.id as number).sort((a, b) => a - b)

let fixture: EventsFixture
let running: TestWorker

before(async () => {
  fixture = await eventsFixture()
  // One slot: a dispatch leases one job at most, the others wait in the queue to be fetched.
  running = await runWorker(fixture.db.url, fixture.dir, { OBSERVERS_CONCURRENCY: '1' })
})

after(async () => {
  await running?.stop()
  await fixture?.close()
})

test('a change the worker has a free slot for runs from its dispatch, without a fetch', async () => {
  // One change at a time, each delivered before the next. A dispatch leases nothing while the
  // runner may have jobs waiting (at start-up, or its periodic poll's moment), so the test asks
  // for one leased job among three rather than for all three.
  for (const id of [1, 2, 3]) {
    await fixture.db.pool.query('insert into events values ($1, $2)', [id, 'one'])
    await eventually(
      async () => (await jobsOf(fixture)).some((j) => j.id === id && j.state === 'completed'),
      30_000,
      `job ${id} completed`,
    )
  }
  const jobs = await jobsOf(fixture)
  assert.deepEqual(
    jobs.map((j) => j.id),
    [1, 2, 3],
  )
  assert.ok(
    jobs.some((j) => j.leased),
    'a job started in its dispatch transaction',
  )
  assert.deepEqual(delivered(fixture), [1, 2, 3])
})

test('jobs beyond the free slots wait in the queue and are fetched, each delivered once', async () => {
  // One transaction, so one dispatch pass sees all five while the only slot is free.
  await fixture.db.pool.query(`insert into events select g, 'many' from generate_series(10, 14) g`)
  const ids = [10, 11, 12, 13, 14]
  await eventually(
    () => ids.every((id) => delivered(fixture).includes(id)),
    30_000,
    'changes 10–14 delivered',
  )
  await eventually(
    async () => (await jobsOf(fixture)).filter((j) => j.state === 'completed').length === 8,
    30_000,
    'eight jobs completed',
  )
  const jobs = (await jobsOf(fixture)).filter((j) => j.id >= 10)
  assert.ok(jobs.filter((j) => j.leased).length <= 1, 'no more jobs leased than the worker has slots')
  assert.deepEqual(delivered(fixture), [1, 2, 3, 10, 11, 12, 13, 14])
})
