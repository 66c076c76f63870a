import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import parsePrometheusTextFormat, { type MetricFamily } from 'parse-prometheus-text-format'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api, holdUndispatched } from './helpers.ts'

let db: TestDatabase
let worker: TestWorker
let receiver: Receiver

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  receiver.reply((req) => {
    if (req.path === '/broken') return { status: 400, body: 'no' }
    if (req.path === '/flaky' && receiver.requests.filter((q) => q.path === '/flaky').length === 1)
      return { status: 503 }
    return { status: 200 }
  })
  await db.pool.query('create table items (id int primary key, kind text not null, payload jsonb)')
  const observer = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    entity: 'items',
    events: ['INSERT'],
    condition: `kind = '${name}'`,
    actions: [{ type: 'webhook', url: `${receiver.url}/${name}` }],
    retry: { max_attempts: 3, initial_delay_ms: 100 },
    ...extra,
  })
  const dir = await observersDir({
    'ok.json': observer('ok'),
    'flaky.json': observer('flaky'),
    'broken.json': observer('broken', { on_failure: 'alert' }),
    'oops.json': observer('oops', { condition: 'payload > 5' }),
  })
  worker = await runWorker(db.url, dir)
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

interface Scrape {
  families: MetricFamily[]
  text: string
}

async function scrape(): Promise<Scrape> {
  const res = await api(worker.worker, '/metrics')
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/)
  return { families: parsePrometheusTextFormat(res.body), text: res.body }
}

function value(s: Scrape, name: string, labels: Record<string, string> = {}): number {
  const family = s.families.find((f) => f.name === name)
  assert.ok(family, `metric ${name} is exposed`)
  const sample = family.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
  return sample ? Number(sample.value) : 0
}

/** The parser folds labelled histograms into one unlabelled sample, so counts are read from the text. */
function histogramCount(s: Scrape, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  const line = s.text
    .split('\n')
    .find((l) => l.startsWith(`${name}_count{`) && wanted.every((w) => l.includes(w)))
  return line ? Number(line.split(' ').at(-1)) : 0
}

test('the scrape parses and exposes process metrics and every observers_ family with its type', async () => {
  const { families } = await scrape()
  const types = new Map(families.map((f) => [f.name, f.type]))
  assert.equal(types.get('process_cpu_user_seconds_total'), 'COUNTER')
  assert.equal(types.get('nodejs_heap_size_used_bytes'), 'GAUGE')
  const expected: Record<string, MetricFamily['type']> = {
    observers_changes_captured_total: 'COUNTER',
    observers_changes_dispatched_total: 'COUNTER',
    observers_deliveries_enqueued_total: 'COUNTER',
    observers_actions_total: 'COUNTER',
    observers_action_duration_seconds: 'HISTOGRAM',
    observers_retries_total: 'COUNTER',
    observers_alerts_total: 'COUNTER',
    observers_condition_errors_total: 'COUNTER',
    observers_dlq_size: 'GAUGE',
    observers_change_log_backlog: 'GAUGE',
    observers_change_log_oldest_undispatched_seconds: 'GAUGE',
  }
  for (const [name, type] of Object.entries(expected)) assert.equal(types.get(name), type, name)
})

test('counters move as events flow', async () => {
  const before = await scrape()
  const items = { entity: 'public.items', event: 'INSERT' }
  await db.pool.query(`insert into items values (1, 'ok', null), (2, 'flaky', null), (3, 'broken', null)`)
  await db.pool.query(`insert into items values (4, 'oops', '{"nested": true}')`)
  const after = await eventually(
    async () => {
      const now = await scrape()
      const done =
        value(now, 'observers_actions_total', { observer: 'flaky', outcome: 'success' }) === 1 &&
        value(now, 'observers_actions_total', { observer: 'broken', outcome: 'failed' }) === 1 &&
        value(now, 'observers_dlq_size') === 1
      return done ? now : undefined
    },
    20_000,
    'every outcome counted',
  )
  const delta = (name: string, labels: Record<string, string> = {}) =>
    value(after, name, labels) - value(before, name, labels)
  assert.equal(delta('observers_changes_captured_total', items), 4)
  assert.equal(delta('observers_changes_dispatched_total', items), 3, 'the oops row matched nothing')
  assert.equal(delta('observers_deliveries_enqueued_total', { observer: 'ok', type: 'webhook' }), 1)
  assert.equal(delta('observers_actions_total', { observer: 'ok', type: 'webhook', outcome: 'success' }), 1)
  assert.equal(delta('observers_actions_total', { observer: 'flaky', outcome: 'retry' }), 1)
  assert.equal(delta('observers_retries_total'), 1)
  assert.equal(delta('observers_alerts_total'), 1)
  assert.equal(delta('observers_condition_errors_total', { observer: 'oops' }), 1)
  const durations = { observer: 'flaky', type: 'webhook' }
  const name = 'observers_action_duration_seconds'
  assert.equal(histogramCount(after, name, durations) - histogramCount(before, name, durations), 2)
  assert.equal(value(after, 'observers_change_log_backlog'), 0)
  assert.equal(value(after, 'observers_change_log_oldest_undispatched_seconds'), 0)
})

test('backlog gauges report changes the dispatcher has not taken yet', async () => {
  const held = await holdUndispatched(db.pool, 90)
  try {
    // A scrape reuses the last database sample for up to a second: poll until a fresh one.
    const locked = await eventually(async () => {
      const m = await scrape()
      return value(m, 'observers_change_log_backlog') === 1 ? m : undefined
    })
    assert.ok(value(locked, 'observers_change_log_oldest_undispatched_seconds') >= 90)
  } finally {
    await held.release()
  }
  await eventually(async () => value(await scrape(), 'observers_change_log_backlog') === 0)
})
