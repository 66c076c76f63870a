import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import pg from 'pg'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { changesSettled, jobsFinished } from '../helpers/settled.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { createFraiseqlChangeLog, insertFraiseqlChange } from './fraiseql-schema.ts'

let db: TestDatabase
let receiver: Receiver
let worker: TestWorker

const hook = (path: string) => ({
  type: 'webhook',
  url: `${receiver.url}${path}`,
  headers: { 'x-delivery-id': '{{ delivery_id }}' },
})

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  await createFraiseqlChangeLog(db.pool)
  // A hand-made change log: `seq` as key, text columns, a naive timestamp.
  await db.pool.query('create schema legacy')
  await db.pool.query(`create table legacy.entity_change_log (
    seq bigserial primary key, object_type text, object_id text, modification_type text,
    object_data text, created_at timestamp not null default now())`)
  await db.pool.query('create table orders (id int primary key, status text)')
  const dir = await observersDir({
    'fq-orders.json': {
      name: 'fq-orders',
      source: 'fraiseql',
      entity: 'Order',
      events: ['INSERT', 'UPDATE', 'DELETE'],
      actions: [hook('/fq/{{ entity_id }}')],
    },
    'fq-table.json': {
      name: 'fq-table',
      source: 'fraiseql',
      entity: 'public.orders',
      events: ['INSERT'],
      actions: [hook('/fq-table')],
    },
    'own-orders.json': { name: 'own-orders', entity: 'orders', events: ['INSERT'], actions: [hook('/own')] },
    'legacy.json': {
      name: 'legacy',
      source: 'legacy',
      entity: 'Invoice',
      events: ['INSERT'],
      actions: [hook('/legacy/{{ entity_id }}')],
    },
  })
  worker = await runWorker(db.url, dir, {
    FRAISEQL_CHANGE_LOG_TABLE: 'core.tb_entity_change_log',
    FRAISEQL_CHANGE_LOG_POLL_MS: '100',
    // A small queue pool: the suite runs files side by side on one server.
    OBSERVERS_CONCURRENCY: '8',
    OBSERVERS_SOURCES: 'legacy:fraiseql',
    OBSERVERS_SOURCE_LEGACY_TABLE: 'legacy.entity_change_log',
    OBSERVERS_SOURCE_LEGACY_POLL_MS: '100',
  })
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

const requestsTo = (prefix: string) => receiver.requests.filter((r) => r.path.startsWith(prefix))

/**
 * A later FraiseQL change delivered and every job finished: the source dispatches in key order,
 * so any delivery of a change committed before the marker has been made by then.
 */
async function passedMarker() {
  const marker = crypto.randomUUID()
  await insertFraiseqlChange(db.pool, { object_id: marker })
  await eventually(() => requestsTo(`/fq/${marker}`).length > 0, 30_000, 'the marker change')
  await jobsFinished(db.pool)
}

test('a FraiseQL change-log row fires its observer once, with the SPEC event as body', async () => {
  const objectId = crypto.randomUUID()
  await insertFraiseqlChange(db.pool, {
    object_id: objectId,
    modification_type: 'UPDATE',
    object_data: { op: 'u', before: { id: 1, status: 'new' }, after: { id: 1, status: 'paid', total: 12.5 } },
    fk_customer_org: 77,
    fk_contact: 9,
    extra_metadata: { via: 'mutation' },
  })
  await eventually(() => requestsTo(`/fq/${objectId}`).length > 0, 10_000, 'FraiseQL delivery')
  await passedMarker()
  const [req, ...more] = requestsTo(`/fq/${objectId}`)
  assert.equal(more.length, 0, 'delivered once')
  const body = JSON.parse(req!.body)
  assert.equal(body.event, 'UPDATE')
  assert.equal(body.entity, 'Order')
  assert.equal(body.entity_id, objectId)
  assert.deepEqual(body.changed, ['status', 'total'])
  assert.equal(body.before.status, 'new')
  assert.equal(body.after.status, 'paid')
  assert.equal(body.tenant_id, '77')
  assert.equal(body.actor_id, '9')
  assert.deepEqual(body.metadata, { via: 'mutation' })
  assert.equal(body.source, 'fraiseql')
  const { rows } = await db.pool.query('select count(*)::int as n from core.tb_entity_change_log')
  assert.ok(rows[0].n >= 1, 'the change log is left as it was: read, never consumed')
})

test('rows committed out of order are each dispatched exactly once', async () => {
  const late = new pg.Client({ connectionString: db.url })
  await late.connect()
  try {
    const [first, second] = [crypto.randomUUID(), crypto.randomUUID()]
    // `first` takes the lower identity but commits after `second`.
    await late.query('begin')
    const lowKey = await insertFraiseqlChange(late, { object_id: first })
    const highKey = await insertFraiseqlChange(db.pool, { object_id: second })
    assert.ok(Number(lowKey) < Number(highKey))
    await eventually(() => requestsTo(`/fq/${second}`).length > 0, 10_000, 'the early committer')
    await passedMarker()
    assert.equal(requestsTo(`/fq/${first}`).length, 0, 'an uncommitted row is not visible yet')
    await late.query('commit')
    await eventually(() => requestsTo(`/fq/${first}`).length > 0, 10_000, 'the late committer')
    await passedMarker()
    assert.equal(requestsTo(`/fq/${first}`).length, 1)
    assert.equal(requestsTo(`/fq/${second}`).length, 1)
  } finally {
    await late.end()
  }
})

test('an observer only matches changes of its own source', async () => {
  await db.pool.query(`insert into orders values (1, 'new')`)
  await insertFraiseqlChange(db.pool, { object_type: 'public.orders' })
  await eventually(() => requestsTo('/own').length > 0 && requestsTo('/fq-table').length > 0, 10_000, 'both')
  await passedMarker()
  await changesSettled(db.pool, 'public.orders')
  assert.equal(requestsTo('/own').length, 1, 'the capture trigger row reaches only the changelog observer')
  assert.equal(requestsTo('/fq-table').length, 1, 'the FraiseQL row reaches only the fraiseql observer')
  assert.equal(JSON.parse(requestsTo('/own')[0]!.body).source, undefined)
})

test('malformed entries go to the DLQ, counted, and never stall the rows behind them', async () => {
  const insert = (id: string | null, data: string) =>
    db.pool.query(
      `insert into legacy.entity_change_log (object_type, object_id, modification_type, object_data)
       values ('Invoice', $1, 'INSERT', $2) returning seq`,
      [id, data],
    )
  const badJson = (await insert('inv-1', '{"total": 12')).rows[0].seq
  const noId = (await insert(null, '{"total": 1}')).rows[0].seq
  await insert('inv-3', '{"total": 3}')
  await eventually(() => requestsTo('/legacy/inv-3').length > 0, 10_000, 'the row behind the malformed ones')
  const dead = await eventually(async () => {
    const { rows } = await db.pool.query(
      `select action_type, last_error_code, last_error, entity, entity_id, observer
         from observers.dlq where action_type = 'malformed' order by last_error_code`,
    )
    return rows.length === 2 ? rows : undefined
  }, 10_000)
  assert.deepEqual(
    dead.map((r) => [r.last_error_code, r.entity, r.entity_id, r.observer]),
    [
      ['OB001', 'Invoice', null, null],
      ['OB009', 'Invoice', 'inv-1', null],
    ],
  )
  assert.match(
    dead[1].last_error,
    new RegExp(`OB009: object_data of change-log entry ${badJson} is not valid JSON`),
  )
  assert.match(dead[0].last_error, new RegExp(`OB001: change-log entry ${noId} has no object_id`))
  const logged = worker.logs.records.filter((r) => r.source === 'legacy' && typeof r.key === 'string')
  assert.deepEqual(logged.map((r) => r.code).sort(), ['OB001', 'OB009'])
  // A later entry of the source delivered: the passes that would count them again have run.
  await insert('inv-4', '{"total": 4}')
  await eventually(() => requestsTo('/legacy/inv-4').length > 0, 30_000, 'the entry after them')
  const health = (await worker.worker.dispatcher.health()).find((h) => h.name === 'legacy')
  assert.equal(health?.malformed, 2, 'counted once each, not read again')
  assert.equal(requestsTo('/legacy/inv-1').length, 0)
})

test('per-source health: backlog, lag and error rate for every source', async () => {
  const health = await worker.worker.dispatcher.health()
  assert.deepEqual(health.map((h) => [h.name, h.kind]).sort(), [
    ['changelog', 'changelog'],
    ['fraiseql', 'fraiseql'],
    ['legacy', 'fraiseql'],
  ])
  for (const h of health) {
    assert.equal(h.backlog, 0, `${h.name} has caught up`)
    assert.equal(h.lagSeconds, null)
    assert.equal(h.backlogWarning, false)
    assert.equal(typeof h.errorRate, 'number', `${h.name} has passes in the last five minutes`)
    assert.ok(h.lastPassAt)
  }
})

test('/metrics and /readyz report each configured source', async () => {
  const base = `http://127.0.0.1:${worker.worker.ops?.port}`
  const metrics = await (await fetch(`${base}/metrics`)).text()
  assert.match(metrics, /observers_source_backlog\{source="fraiseql",kind="fraiseql"\} 0/)
  assert.match(metrics, /observers_source_malformed_entries_total\{source="legacy",kind="fraiseql"\} 2/)
  assert.match(metrics, /observers_source_error_rate\{source="legacy",kind="fraiseql"\} \d/)
  const ready = (await (await fetch(`${base}/readyz`)).json()) as { checks: Record<string, { ok: boolean }> }
  assert.equal(ready.checks.sources?.ok, true)
})
