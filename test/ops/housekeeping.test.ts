import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, startWorkerWithDatabase, type TestWorker } from '../helpers/worker.ts'
import { api, holdUndispatched } from './helpers.ts'

let db: TestDatabase
let worker: TestWorker
let receiver: Receiver
// Bounds only a failure: a passing run waits as long as the worker takes, however loaded the machine.
const patienceMs = 120_000

before(async () => {
  receiver = await startReceiver()
  const dir = await observersDir({
    'items.json': {
      name: 'items',
      entity: 'items',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: receiver.url }],
    },
  })
  ;({ db, worker } = await startWorkerWithDatabase('create table items (id int primary key)', dir, {
    OBSERVERS_CONCURRENCY: '4',
    OBSERVERS_HOUSEKEEPING_INTERVAL_MS: '200',
    OBSERVERS_RETENTION_DAYS: '7',
    OBSERVERS_BACKLOG_WARN: '1',
    OBSERVERS_LAG_WARN_SECONDS: '60',
    OBSERVERS_READY_MAX_LAG_SECONDS: '100',
  }))
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

/** Every change dispatched: what an earlier test released no longer counts in the backlog. */
const drained = () =>
  eventually(
    async () => (await db.pool.query('select 1 from observers.change_pending limit 1')).rowCount === 0,
    patienceMs,
    'the released changes dispatched',
  )

const backlogWarnings = () =>
  worker.logs.records.filter((r) => r.level === 'warn' && /change-log backlog/.test(String(r.msg)))

test('dispatched changes past retention are deleted; recent and undispatched ones stay', async () => {
  await db.pool.query('insert into items select g from generate_series(1, 6) g')
  await receiver.waitFor(6, patienceMs)
  await db.pool.query(
    `update observers.change_log set created_at = now() - interval '8 days'
      where entity = 'public.items' and entity_id in ('1', '2', '3', '4')`,
  )
  const held = await holdUndispatched(db.pool, 10 * 86_400)
  try {
    await eventually(
      async () => {
        const { rows } = await db.pool.query(
          `select entity_id from observers.change_log where entity = 'public.items' order by seq`,
        )
        return rows.length === 2 ? rows.map((r) => r.entity_id) : undefined
      },
      patienceMs,
      'old rows pruned',
    )
    const { rows } = await db.pool.query(
      `select count(*)::int as n from observers.change_log c join observers.change_pending p using (seq)`,
    )
    assert.equal(rows[0].n, 1, 'an undispatched change is never pruned, however old')
    // The pass logs once it has also pruned the delivery records, after the rows are gone. The
    // count may include a held change the dispatcher took before the hold (it is 10 days old).
    await eventually(
      () => worker.logs.records.some((r) => Number(r.pruned) >= 4),
      patienceMs,
      'the prune logged with its count',
    )
  } finally {
    await held.release()
  }
})

test('a backlog over OBSERVERS_BACKLOG_WARN is logged while readiness holds', async () => {
  await drained()
  const first = await holdUndispatched(db.pool, 0)
  const second = await holdUndispatched(db.pool, 0)
  try {
    const seen = backlogWarnings().length
    const line = await eventually(
      () =>
        backlogWarnings()
          .slice(seen)
          .find((r) => r.undispatched === 2),
      patienceMs,
      'a warning counting both held changes',
    )
    assert.equal(line.backlog_warn, 1)
    const ready = await api(worker.worker, '/readyz')
    assert.equal(ready.status, 200, JSON.stringify(ready.body))
    assert.equal(ready.body.checks.dispatch_lag.ok, true)
  } finally {
    await first.release()
    await second.release()
  }
})

test('a lagging change over OBSERVERS_READY_MAX_LAG_SECONDS fails readiness and warns', async () => {
  await drained()
  const held = await holdUndispatched(db.pool, 150)
  try {
    const seen = backlogWarnings().length
    const line = await eventually(() => backlogWarnings().slice(seen)[0], patienceMs, 'a backlog warning')
    assert.ok(Number(line.oldest_age_seconds) >= 150)
    const ready = await api(worker.worker, '/readyz')
    assert.equal(ready.status, 503)
    assert.equal(ready.body.checks.dispatch_lag.ok, false)
    assert.match(ready.body.checks.dispatch_lag.detail, /limit 100 s/)
  } finally {
    await held.release()
  }
  await eventually(
    async () => (await api(worker.worker, '/readyz')).status === 200,
    patienceMs,
    'ready again',
  )
})

test('the writer’s trace context reaches the webhook as a child span', async () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const parentSpan = '00f067aa0ba902b7'
  const client = await db.pool.connect()
  try {
    await client.query('begin')
    await client.query(`select set_config('observers.traceparent', $1, true)`, [
      `00-${traceId}-${parentSpan}-01`,
    ])
    await client.query('insert into items values (100)')
    await client.query('commit')
  } finally {
    client.release()
  }
  const req = await eventually(
    () => receiver.requests.find((r) => JSON.parse(r.body).after.id === 100),
    patienceMs,
    'the traced delivery',
  )
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(req.headers.traceparent))
  assert.ok(m, `traceparent header: ${req.headers.traceparent}`)
  assert.equal(m[1], traceId, 'same trace')
  assert.notEqual(m[2], parentSpan, 'a new span')
})
