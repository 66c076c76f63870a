import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type DurableReceiver, startDurableReceiver } from '../helpers/durable-receiver.ts'
import { audit, full, reaped, rssMb } from '../helpers/faults.ts'
import { assertDrains, cliWorkerEnv, spawnCli, trackedWebhook, waitUntilReady } from '../helpers/process.ts'
import { eventually } from '../helpers/worker.ts'

const total = full ? 50_000 : 5_000
const ratePerSecond = full ? 100 : 500
const concurrency = 16
const rssLimitMb = 400

let db: TestDatabase
let receiver: DurableReceiver
let env: Record<string, string>

before(async () => {
  db = await createTestDatabase('create table clicks (id int primary key, payload text not null)')
  receiver = await startDurableReceiver({ ratePerSecond, bodies: false })
  const clicks = trackedWebhook({
    name: 'clicks',
    url: `${receiver.url}/clicks`,
    retry: { max_attempts: 10, initial_delay_ms: 500, backoff_strategy: 'fixed' },
    timeoutMs: 30_000,
  })
  env = await cliWorkerEnv(db.url, clicks, { LOG_LEVEL: 'warn', OBSERVERS_CONCURRENCY: String(concurrency) })
})

after(async () => {
  await receiver?.close()
  await db?.drop()
})

test(`slow consumer: ${total} changes into a ${ratePerSecond} req/s receiver keep the worker's memory bounded`, async (t) => {
  const worker = reaped(spawnCli(['start'], { ...env, LOG_LEVEL: 'info' }))
  t.after(() => void worker.kill('SIGKILL'))
  await waitUntilReady(worker, env.PORT!)
  const pid = worker.pid!
  const baseline = rssMb(pid)!
  let peak = baseline
  let peakActive = 0
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMb(pid) ?? 0)
  }, 200)
  t.after(() => clearInterval(sampler))
  // Each row carries 1 KB, so holding the backlog in memory would show.
  await db.pool.query(`insert into clicks select g, repeat('x', 1024) from generate_series(1, $1::int) g`, [
    total,
  ])
  await eventually(
    async () => {
      const { rows } = await db.pool.query<{ n: number }>(
        `select count(*)::int as n from pgboss.job where name like 'observers.webhook%' and state = 'active'`,
      )
      peakActive = Math.max(peakActive, rows[0]!.n)
      return receiver.distinct >= total
    },
    // Generous: a busy machine may answer slower than the receiver allows. Beside a second suite
    // on a loaded machine, 5000 deliveries took longer than 140 s.
    (total / ratePerSecond) * 2000 + 420_000,
    `all ${total} deliveries`,
  )
  clearInterval(sampler)
  const result = await audit(db.pool, 'public.clicks', 'clicks', receiver.delivered())
  console.log(
    `backpressure: ${total} changes at ${ratePerSecond} req/s; worker RSS baseline ${baseline.toFixed(0)} MB, peak ${peak.toFixed(0)} MB; peak active jobs ${peakActive}`,
  )
  assert.deepEqual(result.missing, [], 'every change delivered')
  assert.ok(peak < rssLimitMb, `worker RSS peaked at ${peak.toFixed(0)} MB (limit ${rssLimitMb} MB)`)
  assert.ok(
    peakActive <= concurrency,
    `jobs held by the worker never exceed its concurrency (${peakActive} > ${concurrency})`,
  )
  await assertDrains(worker)
})
