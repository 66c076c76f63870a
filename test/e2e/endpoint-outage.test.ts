import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { deliveryId } from '../../src/dispatch/match.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { startDurableReceiver } from '../helpers/durable-receiver.ts'
import { audit, duplicateLine, full } from '../helpers/faults.ts'
import { changesSettled } from '../helpers/settled.ts'
import { webhookObserver } from '../helpers/webhook-observer.ts'
import { eventually, observersDir, runWorker } from '../helpers/worker.ts'

// How many retries of each delivery the outage outlasts at max_delay_ms: the full variant, several.
const retriesAtCap = full ? 5 : 1
const maxDelayMs = full ? 10_000 : 2_000

let db: TestDatabase

before(async () => {
  db = await createTestDatabase()
  await db.pool.query('create table orders (id int primary key)')
  await db.pool.query('create table pings (id int primary key)')
})

after(async () => {
  await db?.drop()
})

test(`receiver down until backoff reaches max_delay_ms: each delivery retried per policy, delivered once when it returns, none dead`, async (t) => {
  const receiver = await startDurableReceiver()
  t.after(() => receiver.close())
  const retry = {
    max_attempts: 40,
    initial_delay_ms: 200,
    max_delay_ms: maxDelayMs,
    backoff_strategy: 'exponential',
  }
  const dir = await observersDir({
    'orders.json': {
      name: 'orders',
      entity: 'orders',
      events: ['INSERT'],
      retry,
      actions: [
        {
          type: 'webhook',
          url: `${receiver.url}/orders`,
          headers: { 'x-delivery-id': '{{ delivery_id }}' },
        },
      ],
    },
  })
  const w = await runWorker(db.url, dir)
  t.after(() => w.stop())
  await db.pool.query('insert into orders select generate_series(1, 100)')
  await eventually(() => receiver.distinct >= 100, 30_000, 'deliveries before the outage')

  await receiver.down()
  const outageAt = Date.now()
  await db.pool.query('insert into orders select generate_series(101, 300)')
  const { rows: outageChanges } = await db.pool.query<{ id: string }>(
    `select id from observers.change_log where entity = 'public.orders' and entity_id::int > 100`,
  )
  const outageIds = new Set(outageChanges.map((c) => deliveryId(c.id, 'orders', 0)))
  assert.equal(outageIds.size, 200)
  const retriesOf = () => {
    const n = new Map<string, number>()
    for (const r of w.logs.records) {
      if (r.outcome !== 'retry' || r.observer !== 'orders') continue
      n.set(String(r.delivery_id), (n.get(String(r.delivery_id)) ?? 0) + 1)
    }
    return n
  }
  // The outage lasts until every one of its deliveries has been scheduled again at max_delay_ms
  // (`retriesAtCap` times): the delay after failed attempt i is initial_delay_ms * 2^(i-1), capped.
  let cappedAfter = 1
  while (retry.initial_delay_ms * 2 ** (cappedAfter - 1) < retry.max_delay_ms) cappedAfter++
  const outageRetries = cappedAfter + retriesAtCap - 1
  await eventually(
    () => {
      const retries = retriesOf()
      return [...outageIds].every((id) => (retries.get(id) ?? 0) >= outageRetries)
    },
    120_000 + outageRetries * retry.max_delay_ms,
    `every delivery of the outage retried ${outageRetries} times, the last delay at max_delay_ms`,
  )
  const duringOutage = receiver.distinct
  await receiver.up()

  await eventually(() => receiver.distinct >= 300, 60_000 + maxDelayMs, 'all deliveries after the outage')
  const result = await audit(db.pool, 'public.orders', 'orders', receiver.delivered())
  console.log(`endpoint outage ${Date.now() - outageAt} ms: ${duplicateLine(result)}`)
  assert.equal(duringOutage, 100, 'nothing was acknowledged while the receiver was down')
  assert.deepEqual(result.missing, [])
  const acknowledged = receiver.delivered().filter((r) => outageIds.has(r.deliveryId ?? ''))
  assert.equal(acknowledged.length, 200, 'each delivery of the outage acknowledged once after recovery')
  const { rows: dead } = await db.pool.query('select count(*)::int as n from observers.dlq')
  assert.equal(dead[0].n, 0, 'max_delay_ms kept every delivery out of the DLQ')
  assert.ok(
    w.logs.records
      .filter((r) => r.outcome === 'retry' && r.observer === 'orders')
      .every((r) => r.code === 'OB006'),
    'connection refused is a transient OB006',
  )

  await changesSettled(db.pool, 'public.orders')
  const { rows } = await db.pool.query<{
    state: string
    attempts: Array<{ at: string; code: string }> | null
  }>(
    `select state, data -> 'attempts' as attempts from pgboss.job
      where name = 'observers.webhook' and (data -> 'event' ->> 'entity_id')::int > 100`,
  )
  assert.equal(rows.length, 200, 'one job per delivery of the outage')
  for (const { state, attempts } of rows) {
    assert.equal(state, 'completed')
    assert.ok((attempts?.length ?? 0) >= 1, 'the failed attempts are recorded on the job')
    assert.ok(attempts!.every((a) => a.code === 'OB006'))
    for (let i = 1; i < attempts!.length; i++) {
      const gap = Date.parse(attempts![i]!.at) - Date.parse(attempts![i - 1]!.at)
      const planned = Math.min(retry.initial_delay_ms * 2 ** (i - 1), retry.max_delay_ms)
      assert.ok(gap >= planned - 50, `attempt ${i + 1} waited ${gap} ms, policy says ${planned}`)
    }
  }
})

test('a receiver that hangs: each attempt times out (OB014), requests never pile up past the concurrency limit', async (t) => {
  const concurrency = 3
  const receiver = await startDurableReceiver({ answer: () => 'hang' })
  t.after(() => receiver.close())
  const dir = await observersDir({
    'pings.json': webhookObserver(
      'pings',
      'pings',
      { url: `${receiver.url}/ping`, timeout_ms: 300 },
      { max_attempts: 2, initial_delay_ms: 100 },
    ),
  })
  const w = await runWorker(db.url, dir, { OBSERVERS_CONCURRENCY: String(concurrency) })
  t.after(() => w.stop())
  const rows = 12
  await db.pool.query('insert into pings select generate_series(1, $1::int)', [rows])
  await eventually(
    async () => {
      const { rows: dead } = await db.pool.query(
        `select count(*)::int as n from observers.dlq where observer = 'pings'`,
      )
      return dead[0].n === rows
    },
    60_000,
    'every hung delivery in the DLQ',
  )
  assert.ok(
    receiver.maxOpen > 0 && receiver.maxOpen <= concurrency,
    `at most ${concurrency} open, saw ${receiver.maxOpen}`,
  )
  assert.equal(receiver.records().length, rows * 2, 'two attempts each, no more')
  const timeouts = w.logs.records.filter((r) => r.observer === 'pings' && r.code === 'OB014')
  assert.equal(timeouts.length, rows, 'the first attempt of each logs OB014 and is retried')
  const { rows: dead } = await db.pool.query(
    `select last_error_code, last_error, attempts from observers.dlq where observer = 'pings'`,
  )
  for (const d of dead) {
    assert.equal(d.last_error_code, 'OB013')
    assert.match(d.last_error, /OB014: action timed out after 300 ms/)
    assert.equal(d.attempts, 2)
  }
  const health = await fetch(`http://127.0.0.1:${w.worker.ops!.port}/healthz`)
  assert.equal(health.status, 200, 'the worker is fine')
})
