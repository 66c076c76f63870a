import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createLogger } from '../../src/log/log.ts'
import { startTracing, tracesEndpoint } from '../../src/ops/otlp.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  attributes: Array<{ key: string; value: Record<string, unknown> }>
}

let db: TestDatabase
let worker: TestWorker | undefined
let collector: Receiver
let first: Receiver
let flaky: Receiver

/** Every span the collector received, from OTLP/HTTP JSON export requests. */
function received(): OtlpSpan[] {
  return collector.requests.flatMap((r) => {
    assert.equal(r.path, '/v1/traces')
    assert.match(String(r.headers['content-type']), /application\/json/)
    const body = JSON.parse(r.body)
    return body.resourceSpans.flatMap((rs: { scopeSpans: Array<{ spans: OtlpSpan[] }> }) =>
      rs.scopeSpans.flatMap((s) => s.spans),
    )
  })
}

function attr(span: OtlpSpan, key: string): unknown {
  const v = span.attributes.find((a) => a.key === key)?.value
  return v === undefined ? undefined : Object.values(v)[0]
}

before(async () => {
  db = await createTestDatabase()
  await db.pool.query('create table items (id int primary key)')
  collector = await startReceiver()
  first = await startReceiver()
  flaky = await startReceiver()
  flaky.reply([{ status: 503, body: 'busy' }, { status: 200 }])
  const dir = await observersDir({
    'two.json': {
      name: 'two',
      entity: 'items',
      events: ['INSERT'],
      actions: [
        { type: 'webhook', url: first.url },
        { type: 'webhook', url: flaky.url },
      ],
      retry: { max_attempts: 3, initial_delay_ms: 0, max_delay_ms: 0 },
    },
  })
  worker = await runWorker(db.url, dir, { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url })
})

after(async () => {
  await worker?.stop()
  for (const r of [collector, first, flaky]) await r?.close()
  await db?.drop()
})

test('one change with two actions, one retried, exports a complete, correctly parented span tree', async () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const appSpan = '00f067aa0ba902b7'
  const client = await db.pool.connect()
  try {
    await client.query('begin')
    await client.query(`set local observers.traceparent = '00-${traceId}-${appSpan}-01'`)
    await client.query('insert into items values (1)')
    await client.query('commit')
  } finally {
    client.release()
  }
  await first.waitFor(1)
  const flakyRequests = await flaky.waitFor(2)
  // Stopping flushes the exporter: every ended span is sent before stop() returns.
  await worker?.stop()
  worker = undefined
  const spans = await eventually(() => {
    const all = received()
    return all.filter((s) => s.name.startsWith('POST')).length >= 3 ? all : undefined
  })
  const byId = new Map(spans.map((s) => [s.spanId, s]))
  for (const s of spans)
    assert.equal(s.traceId, traceId, `${s.name} joins the committing transaction's trace`)

  const dispatch = spans.filter((s) => s.name === 'dispatch public.items')
  assert.equal(dispatch.length, 1, 'one dispatch span per change')
  assert.equal(dispatch[0]?.parentSpanId, appSpan)
  assert.equal(attr(dispatch[0]!, 'messaging.batch.message_count'), 2)

  const sends = spans.filter((s) => s.name.startsWith('send '))
  assert.equal(sends.length, 2, 'one send span per job')
  for (const s of sends) {
    assert.equal(s.parentSpanId, dispatch[0]?.spanId)
    assert.equal(attr(s, 'messaging.operation.type'), 'send')
  }
  const sendOf = (index: number) => sends.find((s) => attr(s, 'observers.action.index') === index)

  const attempts = spans.filter((s) => s.name.startsWith('process '))
  assert.equal(attempts.length, 3, 'one process span per attempt')
  for (const a of attempts) {
    assert.equal(a.parentSpanId, sendOf(Number(attr(a, 'observers.action.index')))?.spanId)
    assert.equal(attr(a, 'messaging.operation.type'), 'process')
  }
  const flakyAttempts = attempts
    .filter((a) => attr(a, 'observers.action.index') === 1)
    .map((a) => [attr(a, 'observers.attempt'), attr(a, 'observers.outcome')])
    .sort()
  assert.deepEqual(flakyAttempts, [
    [1, 'retry'],
    [2, 'completed'],
  ])

  const http = spans.filter((s) => s.name === 'POST')
  assert.equal(http.length, 3, 'one client span per HTTP request')
  for (const h of http) {
    assert.equal(byId.get(h.parentSpanId ?? '')?.name.startsWith('process '), true)
    assert.equal(attr(h, 'http.request.method'), 'POST')
  }
  const statuses = http.map((h) => Number(attr(h, 'http.response.status_code'))).sort()
  assert.deepEqual(statuses, [200, 200, 503])

  // Each request carries its own client span's context: the receiver's trace continues from it.
  for (const req of [...first.requests, ...flakyRequests]) {
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(req.headers.traceparent))
    assert.ok(m, `traceparent ${req.headers.traceparent}`)
    assert.equal(m[1], traceId)
    assert.equal(byId.get(m[2] ?? '')?.name, 'POST')
  }
})

test('the traces endpoint follows the OTLP variables, and nothing starts without one', async () => {
  assert.equal(tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' }), 'http://c:4318/v1/traces')
  assert.equal(
    tracesEndpoint({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t/x',
    }),
    'http://t/x',
  )
  const log = createLogger('silent')
  assert.equal(await startTracing({}, log), undefined)
  assert.equal(
    await startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SDK_DISABLED: 'true' }, log),
    undefined,
  )
})
