import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { completeDelivered, recordAttempt, type SettledAttempt } from '../../src/db/queries/deliveries.ts'
import { statements } from '../../src/db/statements.ts'
import type { ChangeEvent } from '../../src/event/event.ts'
import type { Outcome } from '../../src/queue/boss.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api } from './helpers.ts'

let db: TestDatabase
let flaky: Receiver
let down: Receiver
let worker: TestWorker

before(async () => {
  db = await createTestDatabase('create table items (id int primary key, kind text not null)')
  flaky = await startReceiver()
  down = await startReceiver()
  flaky.reply([{ status: 503 }, { status: 200 }])
  down.reply([{ status: 502 }])
  const observer = (name: string, url: string, max: number) => ({
    name,
    entity: 'items',
    events: ['INSERT'],
    condition: `kind = '${name}'`,
    actions: [{ type: 'webhook', url }],
    retry: { max_attempts: max, initial_delay_ms: 100, backoff_strategy: 'fixed' },
  })
  const dir = await observersDir({
    'flaky.json': observer('flaky', flaky.url, 3),
    'down.json': observer('down', down.url, 2),
  })
  worker = await runWorker(db.url, dir)
})

after(async () => {
  await worker?.stop()
  await flaky?.close()
  await down?.close()
  await db?.drop()
})

// biome-ignore lint/suspicious/noExplicitAny: API bodies are arbitrary JSON
async function record(query: string, until: (d: any) => boolean): Promise<any> {
  return eventually(
    async () => {
      const res = await api(worker.worker, `/api/deliveries?${query}`)
      assert.equal(res.status, 200)
      const [d] = res.body.deliveries
      return d && until(d) ? d : undefined
    },
    60_000,
    `delivery record for ${query}`,
  )
}

test('a delivery retried once then delivered shows delivered with 2 attempts, and outlives its job', async () => {
  await db.pool.query(`insert into items values (1, 'flaky')`)
  const d = await record('observer=flaky&entity=items&entity_id=1', (r) => r.outcome === 'delivered')
  assert.equal(d.attempts, 2)
  assert.equal(d.action_index, 0)
  assert.equal(d.entity, 'public.items')
  assert.ok(d.delivered_at)
  assert.ok(Date.parse(d.first_attempt_at) <= Date.parse(d.last_attempt_at))
  assert.equal(d.output.status, 200, 'what the receiver answered on the attempt that delivered')
  assert.deepEqual(
    [d.last_error, d.last_error_code],
    [null, null],
    'the failed first attempt is not the last',
  )
  assert.equal(typeof d.output.duration_ms, 'number')
  const { rows } = await db.pool.query<{ seq: string }>(
    `select seq from observers.change_log where entity_id = '1'`,
  )
  assert.equal(d.seq, Number(rows[0]?.seq))
  assert.equal(flaky.requests[0]?.headers['webhook-id'], d.delivery_id)

  // What pg-boss's retention does to finished jobs, done at once.
  await db.pool.query(`delete from pgboss.job where data ->> 'delivery_id' = $1`, [d.delivery_id])
  const again = await api(worker.worker, `/api/deliveries?observer=flaky`)
  assert.deepEqual(
    again.body.deliveries.map((r: { delivery_id: string; outcome: string }) => [r.delivery_id, r.outcome]),
    [[d.delivery_id, 'delivered']],
  )
  const psql = await db.pool.query(
    `select outcome, attempts, output ->> 'status' as status from observers.delivery_log where observer = 'flaky'`,
  )
  assert.deepEqual(psql.rows, [{ outcome: 'delivered', attempts: 2, status: '200' }])
})

test('a delivery whose attempts run out shows dead_lettered with its last error', async () => {
  await db.pool.query(`insert into items values (2, 'down')`)
  const d = await record('outcome=dead_lettered', () => true)
  assert.equal(d.observer, 'down')
  assert.equal(d.entity_id, '2')
  assert.equal(d.attempts, 2)
  assert.equal(d.delivered_at, null)
  assert.match(d.last_error, /^OB013: gave up after 2 attempts; last error: OB006: .*502/)
  assert.equal(d.last_error_code, 'OB013')
  const psql = await db.pool.query(
    `select last_error_code from observers.delivery_log where delivery_id = $1`,
    [d.delivery_id],
  )
  assert.deepEqual(psql.rows, [{ last_error_code: 'OB013' }])
  const none = await api(worker.worker, '/api/deliveries?observer=down&outcome=delivered')
  assert.deepEqual(none.body.deliveries, [])
})

test('an unknown outcome is a 400 naming the choices', async () => {
  const res = await api(worker.worker, '/api/deliveries?outcome=lost')
  assert.equal(res.status, 400)
  assert.equal(res.body.code, 'OB015')
  assert.match(res.body.message, /delivered, retrying, dead_lettered, given_up/)
})

test('a batch of completions records each delivery, a retried one keeping its earlier attempts', async () => {
  const run = statements(true)
  const attempt = (delivery: string, job: string, retryCount: number): SettledAttempt => ({
    id: job,
    retryCount,
    data: {
      delivery_id: delivery,
      observer: 'batch',
      action_index: 0,
      event: { id: `ev-${delivery}`, entity: 'public.items', entity_id: delivery, seq: 900 } as ChangeEvent,
    },
  })
  const jobA = randomUUID()
  const jobB = randomUUID()
  await recordAttempt(db.pool, run, attempt('batch-a', jobA, 0), {
    kind: 'retry',
    delayMs: 100,
    record: { attempt: 1, at: new Date().toISOString(), code: 'OB005', error: 'HTTP 503', duration_ms: 1 },
  })
  // An expired attempt of batch-b and its retry ending in the same batch.
  await completeDelivered(db.pool, run, 'observers.webhook', [
    { job: attempt('batch-a', jobA, 1), output: { status: 200, duration_ms: 7, n: 'a' } },
    { job: attempt('batch-b', jobB, 0), output: { status: 200, duration_ms: 8, n: 'b0' } },
    { job: attempt('batch-b', jobB, 1), output: { status: 200, duration_ms: 9, n: 'b1' } },
  ])
  const { rows } = await db.pool.query(
    `select delivery_id, outcome, attempts, job_attempt, last_error, last_error_code,
            delivered_at is not null as delivered, duration_ms, output
       from observers.deliveries where observer = 'batch' order by delivery_id`,
  )
  assert.deepEqual(rows, [
    {
      delivery_id: 'batch-a',
      outcome: 'delivered',
      attempts: 2,
      job_attempt: 2,
      last_error: null,
      last_error_code: null,
      delivered: true,
      duration_ms: 7,
      output: { status: 200, duration_ms: 7, n: 'a' },
    },
    {
      delivery_id: 'batch-b',
      outcome: 'delivered',
      attempts: 2,
      job_attempt: 2,
      last_error: null,
      last_error_code: null,
      delivered: true,
      duration_ms: 9,
      output: { status: 200, duration_ms: 9, n: 'b1' },
    },
  ])
})

test("a late settlement of an earlier attempt leaves the later one's error and code; a replay's job replaces them", async () => {
  const run = statements(true)
  const job = randomUUID()
  const attempt = (id: string, retryCount: number): SettledAttempt => ({
    id,
    retryCount,
    data: {
      delivery_id: 'late',
      observer: 'late',
      action_index: 0,
      event: { id: 'ev-late', entity: 'public.items', entity_id: 'late', seq: 901 } as ChangeEvent,
    },
  })
  const failed = (code: string): Outcome => ({
    kind: 'retry',
    delayMs: 100,
    record: { attempt: 1, at: new Date().toISOString(), code, error: `${code}: failed`, duration_ms: 1 },
  })
  const last = async () =>
    (
      await db.pool.query(
        `select last_error, last_error_code from observers.deliveries where delivery_id = 'late'`,
      )
    ).rows[0]
  await recordAttempt(db.pool, run, attempt(job, 1), failed('OB014'))
  await recordAttempt(db.pool, run, attempt(job, 0), failed('OB006'))
  assert.deepEqual(await last(), { last_error: 'OB014: failed', last_error_code: 'OB014' })
  await recordAttempt(db.pool, run, attempt(randomUUID(), 0), failed('OB007'))
  assert.deepEqual(await last(), { last_error: 'OB007: failed', last_error_code: 'OB007' })
})
