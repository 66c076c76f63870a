import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api, hookObserver } from './helpers.ts'

let db: TestDatabase
let worker: TestWorker
let receiver: Receiver

before(async () => {
  db = await createTestDatabase()
  await db.pool.query('create table items (id int primary key)')
  receiver = await startReceiver()
  receiver.reply(() => ({ status: 200 }))
  const dir = await observersDir({ 'hook.json': hookObserver('hook', 'items', receiver.url) })
  worker = await runWorker(db.url, dir)
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

/** A settled delivery written as another worker would have. */
async function settled(n: number, outcome: string, durationMs: number, ago = '1 minute', attempts = 1) {
  await db.pool.query(
    `insert into observers.deliveries (delivery_id, observer, action_index, event_id, entity, entity_id,
       seq, outcome, attempts, first_attempt_at, last_attempt_at, last_error, last_error_code, job_id,
       job_attempt, duration_ms)
     values ($1, 'hook', 0, $1, 'public.items', $1, 0, $2, $5, now() - $4::interval - interval '1 second',
             now() - $4::interval, case when $2 <> 'delivered' then 'OB007: refused #' || $6 end,
             case when $2 <> 'delivered' then 'OB007' end, gen_random_uuid(), 1, $3)`,
    [`other-${n}`, outcome, durationMs, ago, attempts, n],
  )
}

test("an observer reports every worker's deliveries of the last hour and their p50/p95", async () => {
  await db.pool.query('insert into items select generate_series(1, 3)')
  await eventually(async () => {
    const { rows } = await db.pool.query(
      `select count(*)::int as n from observers.deliveries where duration_ms is not null`,
    )
    return rows[0].n === 3
  })
  const mine = (await api(worker.worker, '/api/observers')).body.observers[0]
  assert.equal(mine.activity.delivered, 3)
  assert.equal(mine.stats.succeeded, 3)

  // Other workers' deliveries: 20 delivered taking 1000..20000 ms, 2 retrying, 1 dead-lettered,
  // and one delivered two hours ago, outside the window.
  for (let i = 1; i <= 20; i++) await settled(i, 'delivered', i * 1000)
  await settled(21, 'retrying', 50_000, '1 minute', 2)
  await settled(22, 'retrying', 50_000)
  await settled(23, 'dead_lettered', 50_000, '30 seconds', 3)
  await settled(24, 'delivered', 1, '2 hours')
  await settled(25, 'given_up', 1, '2 hours')
  // Each worker reads the activity at most every 10 s.
  const hook = await eventually(async () => {
    const { body } = await api(worker.worker, '/api/observers')
    return body.observers[0].activity.delivered === 23 ? body.observers[0] : undefined
  })
  // The stats are the same figures, with the new work, the retries and the last failure.
  assert.deepEqual(hook.stats, {
    matched: 26,
    succeeded: 23,
    failed: 1,
    retried: 2 + 1 + 2,
    last_error: {
      at: hook.stats.last_error.at,
      code: 'OB007',
      message: 'OB007: refused #23',
      delivery_id: 'other-23',
    },
    p50_ms: hook.activity.p50_ms,
    p95_ms: hook.activity.p95_ms,
    in_dlq: 0,
  })
  assert.ok(Date.now() - Date.parse(hook.stats.last_error.at) >= 30_000)
  const { window_seconds, delivered, retrying, failed, p50_ms, p95_ms } = hook.activity
  assert.deepEqual(
    { window_seconds, delivered, retrying, failed },
    { window_seconds: 3600, delivered: 23, retrying: 2, failed: 1 },
  )
  // 26 durations: 3 of this worker (well under a second), 1000..20000, and 3 of 50 000.
  assert.equal(p50_ms, 10_000)
  assert.equal(p95_ms, 50_000)
})
