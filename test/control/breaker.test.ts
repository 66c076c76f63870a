import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { runCli } from '../cli/helpers.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { webhookObserver } from '../helpers/webhook-observer.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api } from '../ops/helpers.ts'

let db: TestDatabase
let receiver: Receiver
let worker: TestWorker
let dir: string
let down = true
/** Row ids the receiver accepted, once per accepted request. */
const accepted: number[] = []
/** Retried long enough to outlast the breaker's holding its deliveries. */
const flaky = () =>
  webhookObserver(
    'flaky',
    'items',
    { url: receiver.url, body_template: { id: '{{ after.id }}' } },
    { max_attempts: 10, initial_delay_ms: 50 },
  )

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  receiver.reply((r) => {
    if (down) return { status: 503 }
    accepted.push((JSON.parse(r.body) as { id: number }).id)
    return { status: 200 }
  })
  await db.pool.query('create table items (id int primary key)')
  dir = await observersDir({
    'flaky.json': flaky(),
  })
  worker = await runWorker(db.url, dir, {
    OBSERVERS_CONCURRENCY: '1',
    OBSERVERS_BREAKER_FAILURES: '3',
    OBSERVERS_BREAKER_PROBE_MS: '300',
  })
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

test('a failing destination opens its breaker, deliveries wait unspent, a probe closes it and all arrive once', async () => {
  await db.pool.query('insert into items select generate_series(1, 6)')
  const open = await eventually(async () => {
    const list = await api(worker.worker, '/api/observers')
    return list.body.breakers.length === 1 ? list.body.breakers[0] : undefined
  })
  assert.ok(open.failures >= 3, `${open.failures} failures`)
  const listed = await api(worker.worker, '/api/observers')
  const action = listed.body.observers[0].actions[0]
  assert.equal(action.destination, open.destination, 'the action names the breaker it answers to')
  assert.equal(action.breaker_open, true)
  const readyz = await api(worker.worker, '/readyz')
  assert.match(readyz.body.checks.breakers.detail, new RegExp(`circuit breaker open: ${open.destination}`))
  const metrics = await api(worker.worker, '/metrics')
  assert.match(metrics.body, /observers_breaker_open\{destination="webhook:[^"]+"\} 1/)

  // Two failed probes while open: the other deliveries keep waiting without spending attempts.
  const opened = receiver.requests.length
  await eventually(() => receiver.requests.length >= opened + 2, 60_000, 'two probes')
  const { rows: dead } = await db.pool.query('select count(*)::int as n from observers.dlq')
  assert.equal(dead[0].n, 0, 'nothing dead-lettered while the breaker was open')

  down = false
  await eventually(() => accepted.length >= 6, 60_000, 'every delivery')
  assert.deepEqual(
    [...accepted].sort((a, b) => a - b),
    [1, 2, 3, 4, 5, 6],
    'each delivered once',
  )
  const { rows } = await db.pool.query('select count(*)::int as n from observers.breakers')
  assert.equal(rows[0].n, 0, 'the breaker closed')
  const { rows: dlq } = await db.pool.query('select count(*)::int as n from observers.dlq')
  assert.equal(dlq[0].n, 0, 'nothing dead-lettered')
})

test('an operator closes a breaker by hand; an unknown destination is 404', async () => {
  await db.pool.query(
    `insert into observers.breakers values ('webhook:example.test', 7, now(), now() + interval '1 hour')`,
  )
  await worker.worker.breakers.refresh()
  assert.equal(worker.worker.breakers.open().length, 1)
  const closed = await api(worker.worker, '/api/breakers/webhook%3Aexample.test/close', { method: 'POST' })
  assert.equal(closed.status, 200)
  assert.equal(worker.worker.breakers.open().length, 0)
  const again = await api(worker.worker, '/api/breakers/webhook%3Aexample.test/close', { method: 'POST' })
  assert.equal(again.status, 404)
})

test('while open, no delivery reaches the destination; closing it by hand delivers each once', async () => {
  const healthy = await startReceiver()
  await db.pool.query('create table pings (id int primary key)')
  const withBarrier = await observersDir({
    'flaky.json': flaky(),
    'ping.json': {
      name: 'ping',
      entity: 'pings',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: healthy.url }],
    },
  })
  await worker.stop()
  // No probe within the test: only a close by hand lets the held deliveries go.
  worker = await runWorker(db.url, withBarrier, {
    OBSERVERS_CONCURRENCY: '1',
    OBSERVERS_BREAKER_FAILURES: '3',
    OBSERVERS_BREAKER_PROBE_MS: '3600000',
  })
  try {
    down = true
    accepted.length = 0
    const before = receiver.requests.length
    await db.pool.query('insert into items select generate_series(11, 16)')
    const open = await eventually(async () => {
      await worker.worker.breakers.refresh()
      return worker.worker.breakers.open()[0]
    })
    // A positive barrier: a later change to a healthy destination is delivered, so the held
    // deliveries (retry delay 50 ms) have had every chance to be attempted meanwhile.
    await db.pool.query('insert into pings values (1)')
    await healthy.waitFor(1)
    assert.equal(
      receiver.requests.length - before,
      3,
      'only the 3 failures that opened it reached the destination',
    )
    const { rows: dead } = await db.pool.query('select count(*)::int as n from observers.dlq')
    assert.equal(dead[0].n, 0)

    const status = await runCli(['status', '--json'], { DATABASE_URL: db.url, OBSERVERS_DIR: dir })
    assert.equal(status.code, 0, status.output)
    assert.deepEqual(
      JSON.parse(status.stdout).open_breakers.map((b: { destination: string }) => b.destination),
      [open.destination],
    )

    down = false
    const cli = await runCli(['breaker', 'close', open.destination], {
      DATABASE_URL: db.url,
      OBSERVERS_DIR: dir,
    })
    assert.equal(cli.code, 0, cli.output)
    await eventually(() => accepted.length >= 6, 60_000, 'every held delivery')
    assert.deepEqual(
      [...accepted].sort((a, b) => a - b),
      [11, 12, 13, 14, 15, 16],
      'each delivered once',
    )
  } finally {
    await healthy.close()
  }
})
