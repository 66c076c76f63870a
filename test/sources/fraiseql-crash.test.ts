import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { exited, spawnCli, waitForOutput } from '../helpers/process.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir } from '../helpers/worker.ts'
import { createFraiseqlChangeLog } from './fraiseql-schema.ts'

let db: TestDatabase
let receiver: Receiver
let env: Record<string, string>

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  await createFraiseqlChangeLog(db.pool)
  const dir = await observersDir({
    'payments.json': {
      name: 'payments',
      source: 'fraiseql',
      entity: 'Payment',
      events: ['INSERT'],
      retry: { max_attempts: 10, initial_delay_ms: 100, backoff_strategy: 'fixed' },
      actions: [
        // A short limit hands the killed worker's in-flight jobs back soon.
        {
          type: 'webhook',
          url: receiver.url,
          timeout_ms: 1000,
          headers: { 'x-delivery-id': '{{ delivery_id }}' },
        },
      ],
    },
  })
  env = {
    DATABASE_URL: db.url,
    OBSERVERS_DIR: dir,
    PORT: '0',
    FRAISEQL_CHANGE_LOG_TABLE: 'core.tb_entity_change_log',
    FRAISEQL_CHANGE_LOG_POLL_MS: '100',
    // A small queue pool: the suite runs files side by side on one server.
    OBSERVERS_CONCURRENCY: '8',
  }
})

after(async () => {
  await receiver?.close()
  await db?.drop()
})

test('SIGKILL mid-stream on a FraiseQL source: every entry delivered, dispatched once, duplicates share a delivery id', async (t) => {
  const first = spawnCli(['start'], env)
  // A failed assertion must not leave a worker running.
  t.after(() => first.kill('SIGKILL'))
  await waitForOutput(first, /loaded 1 observer/)
  const total = 600
  let inserted = 0
  const writer = (async () => {
    while (inserted < total) {
      await db.pool.query(
        `insert into core.tb_entity_change_log (object_type, object_id, modification_type, object_data)
         select 'Payment', gen_random_uuid(), 'INSERT', jsonb_build_object('n', g)
           from generate_series($1::int, $1::int + 19) g`,
        [inserted + 1],
      )
      inserted += 20
      await new Promise((r) => setTimeout(r, 10))
    }
  })()
  await eventually(() => receiver.requests.length > 100, 30_000, 'deliveries under way')
  first.kill('SIGKILL')
  assert.equal((await exited(first)).signal, 'SIGKILL')
  await writer
  const second = spawnCli(['start'], env)
  t.after(() => second.kill('SIGKILL'))
  try {
    const n = (body: string) => JSON.parse(body).after.n as number
    await eventually(
      () => new Set(receiver.requests.map((r) => n(r.body))).size >= total,
      90_000,
      'all deliveries',
    )
    const byEntry = new Map<number, Set<string>>()
    for (const r of receiver.requests) {
      const ids = byEntry.get(n(r.body)) ?? new Set()
      ids.add(String(r.headers['x-delivery-id']))
      byEntry.set(n(r.body), ids)
    }
    assert.equal(byEntry.size, total)
    for (const [entry, deliveries] of byEntry)
      assert.equal(deliveries.size, 1, `entry ${entry}: one delivery id`)
    const { rows } = await db.pool.query(
      `select count(*)::int as jobs, count(distinct id)::int as distinct_jobs from pgboss.job
        where data ->> 'observer' = 'payments'`,
    )
    assert.deepEqual(rows[0], { jobs: total, distinct_jobs: total }, 'each entry was dispatched exactly once')
  } finally {
    second.kill('SIGTERM')
    const { code } = await exited(second)
    assert.equal(code, 0, 'SIGTERM drains and exits 0')
  }
})
