import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { killMidStream } from '../helpers/crash.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { cliWorkerEnv, trackedWebhook } from '../helpers/process.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { createFraiseqlChangeLog } from './fraiseql-schema.ts'

let db: TestDatabase
let receiver: Receiver
let env: Record<string, string>

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  await createFraiseqlChangeLog(db.pool)
  const payments = trackedWebhook({
    name: 'payments',
    source: 'fraiseql',
    entity: 'Payment',
    url: receiver.url,
    retry: { max_attempts: 10, initial_delay_ms: 100, backoff_strategy: 'fixed' },
    // A short limit hands the killed worker's in-flight jobs back soon.
    timeoutMs: 1000,
  })
  env = await cliWorkerEnv(db.url, payments, {
    FRAISEQL_CHANGE_LOG_TABLE: 'core.tb_entity_change_log',
    FRAISEQL_CHANGE_LOG_POLL_MS: '100',
    // A small queue pool: the suite runs files side by side on one server.
    OBSERVERS_CONCURRENCY: '8',
  })
})

after(async () => {
  await receiver?.close()
  await db?.drop()
})

test('SIGKILL mid-stream on a FraiseQL source: every entry delivered, dispatched once, duplicates share a delivery id', async (t) => {
  const total = 600
  await killMidStream(t, {
    env,
    receiver,
    total,
    batchSize: 20,
    writeBatch: (first, size) =>
      db.pool.query(
        `insert into core.tb_entity_change_log (object_type, object_id, modification_type, object_data)
         select 'Payment', gen_random_uuid(), 'INSERT', jsonb_build_object('n', g)
           from generate_series($1::int, $2::int) g`,
        [first, first + size - 1],
      ),
    numberedBy: 'n',
    killAfter: 100,
    deliverWithinMs: 90_000,
  })
  const { rows } = await db.pool.query(
    `select count(*)::int as jobs, count(distinct id)::int as distinct_jobs from pgboss.job
      where data ->> 'observer' = 'payments'`,
  )
  assert.deepEqual(rows[0], { jobs: total, distinct_jobs: total }, 'each entry was dispatched exactly once')
})
