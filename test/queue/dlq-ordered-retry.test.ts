import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { lockKeys } from '../../src/db/locks.ts'
import { statements } from '../../src/db/statements.ts'
import type { EventKind } from '../../src/event/event.ts'
import { createLogger } from '../../src/log/log.ts'
import type { ActionConfig } from '../../src/observers/types.ts'
import { type ClaimedJob, enqueue, type Outcome, queueName } from '../../src/queue/boss.ts'
import { type Runners, startRunners } from '../../src/queue/runner.ts'
import { changeEvent, delivery } from '../helpers/action-context.ts'
import { queueFixture } from '../helpers/queue.ts'
import { eventually } from '../helpers/worker.ts'

// A DLQ retry of an ordered row against a fetch of the same queue whose transaction began before
// the retry's: the fetch counts "due" by its own start (pgboss.job_now()), and the runner begins
// that transaction before it waits for its turn on the queue's fetch lock (src/queue/runner.ts).
// The interleaving is forced with the lock, so the test needs no luck and no sleep.

const queue = queueName('webhook', 'ordered')
const key = 'public.items:1'
const fixture = queueFixture()
// Bounds only a failure: a passing run waits as long as the worker takes, however loaded the machine.
const patienceMs = 120_000
let runners: Runners | undefined

after(async () => {
  await runners?.stop(1_000)
})

async function enqueueChange(kind: EventKind) {
  const action = { type: 'webhook', url: 'http://127.0.0.1:9/hook' } as unknown as ActionConfig
  await enqueue(fixture.boss, fixture.db.pool, [
    {
      jobId: undefined,
      queue,
      delivery: delivery(action, changeEvent({ event: kind })),
      key,
      group: undefined,
      expireInSeconds: 60,
    },
  ])
}

test("a retried dead letter runs before its row's next change, even for a fetch that began before the retry", async () => {
  const { pool } = fixture.db
  // The INSERT's first attempt fails for good; every later attempt is delivered, in the order kept here.
  const delivered: EventKind[] = []
  let failedOnce = false
  const handle = async ({ delivery: d }: ClaimedJob): Promise<Outcome> => {
    const record = { attempt: 1, at: new Date().toISOString(), code: 'OB006', error: 'down', duration_ms: 1 }
    if (!failedOnce && d.event.event === 'INSERT') {
      failedOnce = true
      return { kind: 'failed', record, deadLetter: true }
    }
    delivered.push(d.event.event)
    return { kind: 'completed', output: {} }
  }
  await enqueueChange('INSERT')
  await enqueueChange('DELETE')
  runners = await startRunners(['webhook'], {
    boss: fixture.boss,
    pool,
    statements: statements(true),
    log: createLogger('silent'),
    concurrency: () => 1,
    listen: false,
    // Only this test's marks start a fetch.
    pollMs: 3_600_000,
    handle,
  })
  const dead = await eventually(
    async () => {
      const { rows } = await pool.query<{ id: string }>(`select id from observers.dlq where event = 'INSERT'`)
      return rows[0]
    },
    patienceMs,
    'the dead letter',
  )
  assert.deepEqual(delivered, [], 'the DELETE waits behind the failed INSERT')

  // The next fetch of the ordered queue begins its transaction, then waits for the lock held here.
  const holder = await pool.connect()
  try {
    await holder.query('begin')
    await holder.query('select pg_advisory_xact_lock($1::int, hashtext($2))', [lockKeys.fetchClass, queue])
    runners.mark(queue)
    const fetcher = await eventually(
      async () => {
        const { rows } = await pool.query<{ pid: number }>(
          `select l.pid from pg_locks l
            where l.locktype = 'advisory' and not l.granted and l.classid = $1
              and l.database = (select oid from pg_database where datname = current_database())`,
          [lockKeys.fetchClass],
        )
        return rows[0]?.pid
      },
      patienceMs,
      'the fetch waiting for its turn',
    )
    const { rows } = await pool.query<{ ok: boolean; later: boolean }>(
      `select observers.retry_dead_letter($1) as ok,
              now() > (select xact_start from pg_stat_activity where pid = $2) as later`,
      [dead.id, fetcher],
    )
    assert.deepEqual(rows[0], { ok: true, later: true }, "retried, in a transaction begun after the fetch's")
  } finally {
    await holder.query('commit')
    holder.release()
  }
  await eventually(() => delivered.length === 2, patienceMs, 'both changes delivered')
  assert.deepEqual(delivered, ['INSERT', 'DELETE'])
  const { rows: due } = await pool.query<{ event: string }>(
    `select data -> 'event' ->> 'event' as event from pgboss.job
      where name = $1 and singleton_key = $2 order by start_after, created_on`,
    [queue, key],
  )
  assert.deepEqual(
    due.map((r) => r.event),
    ['INSERT', 'DELETE'],
    'the retried job is due no later than the change behind it',
  )
})
