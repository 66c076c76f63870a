import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import pg from 'pg'
import { lockKeys } from '../../src/db/locks.ts'
import { queueName } from '../../src/queue/boss.ts'
import { notifyChannel } from '../../src/queue/pgboss-sql.ts'
import { type EventsFixture, eventsFixture } from '../helpers/events.ts'
import { eventually, runWorker, type TestWorker } from '../helpers/worker.ts'

// The runners' backstop poll is ten minutes, and a worker leading every partition announces its
// jobs to no other: a job is fetched within a test's timeout only if the dispatcher that enqueued
// it woke this process's runner.
const noPoll = { OBSERVERS_QUEUE_POLL_MS: '600000' }
const queue = queueName('webhook', 'plain')

let fixture: EventsFixture
let running: TestWorker

before(async () => {
  fixture = await eventsFixture()
  running = await runWorker(fixture.db.url, fixture.dir, noPoll)
})

after(async () => {
  await running?.stop()
  await fixture?.close()
})

const delivered = () => fixture.receiver.requests.map((r) => JSON.parse(r.body).after.id as number)

test('jobs the local dispatcher enqueues are fetched without a NOTIFY or a poll', async () => {
  assert.equal((await running.worker.queue.getQueue(queue))?.notify, false, 'pg-boss does not announce jobs')
  // One change after another: the runner's fetch at start-up cannot be what finds the second.
  for (const id of [1, 2]) {
    await fixture.db.pool.query('insert into events values ($1, $2)', [id, 'local'])
    await eventually(() => delivered().includes(id), 30_000, `change ${id} delivered`)
  }
  assert.deepEqual(delivered(), [1, 2])
})

test('jobs the local runner has free slots for start in the dispatch pass, without a fetch', async () => {
  await fixture.db.pool.query('insert into events values (3, $1)', ['leased'])
  await eventually(() => delivered().includes(3), 30_000, 'change 3 delivered')
  // A fetch would have claimed the job in a transaction of its own, after the dispatch committed.
  const job = async () =>
    (
      await fixture.db.pool.query(
        `select state, started_on = created_on as started_in_pass, retry_count from pgboss.job
          where name = $1 and data -> 'event' -> 'after' ->> 'id' = '3'`,
        [queue],
      )
    ).rows
  await eventually(async () => (await job())[0]?.state === 'completed', 30_000, 'its completion written')
  assert.deepEqual(await job(), [{ state: 'completed', started_in_pass: true, retry_count: 0 }])
})

/** Workers leading at least one dispatch partition of this database. */
async function leaders(): Promise<number> {
  const { rows } = await fixture.db.pool.query<{ n: number }>(
    `select count(distinct pid)::int as n from pg_locks
      where locktype = 'advisory' and granted and objsubid = 2 and classid = $1::oid
        and database = (select oid from pg_database where datname = current_database())`,
    [lockKeys.partitionClass],
  )
  return rows[0]?.n ?? 0
}

test('a worker sharing the partitions with another announces its jobs to the others', async () => {
  const listener = new pg.Client({ connectionString: fixture.db.url })
  await listener.connect()
  const heard: string[] = []
  listener.on('notification', (n) => heard.push(n.payload ?? ''))
  await listener.query(`listen "${notifyChannel()}"`)
  // One slot: the second worker's passes queue what it has no slot for, and announce it.
  const second = await runWorker(fixture.db.url, fixture.dir, { ...noPoll, OBSERVERS_CONCURRENCY: '1' })
  try {
    await eventually(async () => (await leaders()) === 2, 30_000, 'two workers sharing the partitions')
    // Rows spread over the partitions, so each worker dispatches some and announces them.
    await fixture.db.pool.query(`insert into events select g, 'shared' from generate_series(100, 131) g`)
    await eventually(() => heard.includes(queue), 30_000, `an announcement of ${queue}`)
    for (let id = 100; id < 132; id++) {
      await eventually(() => delivered().includes(id), 30_000, `change ${id} delivered`)
    }
  } finally {
    await second.stop()
    await listener.end()
  }
})
