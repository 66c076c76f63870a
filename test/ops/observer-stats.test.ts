import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { webhookObserver } from '../helpers/webhook-observer.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api } from './helpers.ts'

let db: TestDatabase
let receiver: Receiver
const workers: TestWorker[] = []

// What the receiver answers each order: 4 fails once, 5 is refused for good, 6 fails every time.
const answers: Record<string, number[]> = { '4': [503, 200], '5': [400], '6': [503] }
const answered = new Map<string, number>()

before(async () => {
  db = await createTestDatabase('create table orders (id int primary key)')
  // Watched up front: two workers starting at once would each try to attach the trigger.
  await db.pool.query(`select observers.watch('orders')`)
  receiver = await startReceiver()
  receiver.reply((req) => {
    const id = String((JSON.parse(req.body) as { id: string }).id)
    const n = answered.get(id) ?? 0
    answered.set(id, n + 1)
    const script = answers[id] ?? [200]
    return { status: script[Math.min(n, script.length - 1)] ?? 200 }
  })
  const dir = await observersDir({
    'orders.json': webhookObserver(
      'orders',
      'orders',
      { url: `${receiver.url}/orders`, body_template: { id: '{{ id }}' } },
      { max_attempts: 3, initial_delay_ms: 50 },
    ),
  })
  workers.push(await runWorker(db.url, dir), await runWorker(db.url, dir))
})

after(async () => {
  for (const w of workers) await w.stop()
  await receiver?.close()
  await db?.drop()
})

/** Waits until every delivery of `ids` has its final outcome in the record. */
async function settled(ids: number[]) {
  await eventually(async () => {
    const { rows } = await db.pool.query(
      `select count(*)::int as n from observers.deliveries
        where entity_id = any($1::text[]) and outcome <> 'retrying'`,
      [ids.map(String)],
    )
    return rows[0].n === ids.length
  })
}

async function statsFrom(w: TestWorker) {
  const { status, body } = await api(w.worker, '/api/observers')
  assert.equal(status, 200)
  const o = body.observers.find((x: { name: string }) => x.name === 'orders')
  return { stats: o.stats, activity: o.activity }
}

test('every worker reports the same stats, those of the deliveries the receiver saw', async () => {
  await db.pool.query('insert into orders select generate_series(1, 5)')
  await settled([1, 2, 3, 4, 5])
  // Inserted once the others are settled, so its failure is the last one.
  await db.pool.query('insert into orders values (6)')
  await settled([6])

  const requests = receiver.requests.length
  const { rows } = await db.pool.query<{ delivery_id: string }>(
    `select delivery_id from observers.deliveries where entity_id = '6'`,
  )
  const codes = await db.pool.query(
    `select entity_id, last_error_code from observers.deliveries where entity_id in ('4', '5', '6')
      order by entity_id`,
  )
  assert.deepEqual(
    codes.rows,
    [
      { entity_id: '4', last_error_code: null },
      { entity_id: '5', last_error_code: 'OB007' },
      { entity_id: '6', last_error_code: 'OB013' },
    ],
    "each last attempt's code in its own column: none once delivered, refused, attempts run out",
  )
  const expected = {
    matched: answered.size,
    succeeded: 4,
    failed: 2,
    // Every request beyond a delivery's first was the retry of a failed attempt.
    retried: requests - answered.size,
    in_dlq: 2,
  }
  assert.deepEqual(
    { requests, orders: answered.size },
    { requests: 3 + 2 + 1 + 3, orders: 6 },
    'the receiver saw each attempt once',
  )

  // Each worker reads the figures at most every 10 s: wait until both have read the final ones.
  const seen = await Promise.all(
    workers.map((w) =>
      eventually(async () => {
        const s = await statsFrom(w)
        const { matched, succeeded, failed, retried, in_dlq } = s.stats
        const now = { matched, succeeded, failed, retried, in_dlq }
        return JSON.stringify(now) === JSON.stringify(expected) ? s : undefined
      }),
    ),
  )
  const [a, b] = seen
  assert.deepEqual(a, b, 'both workers answer alike')
  assert.ok(a)
  const e = a.stats.last_error
  assert.equal(e.delivery_id, rows[0]?.delivery_id)
  assert.equal(e.code, 'OB013')
  assert.match(e.message, /^OB013: gave up after 3 attempts; last error: OB006: .*503/)
  assert.ok(Date.parse(e.at) > Date.now() - 3_600_000)
  assert.equal(typeof a.stats.p50_ms, 'number')
  assert.ok(a.stats.p95_ms >= a.stats.p50_ms)
  assert.equal(a.stats.p50_ms, a.activity.p50_ms)
  assert.deepEqual(
    { delivered: a.activity.delivered, retrying: a.activity.retrying, failed: a.activity.failed },
    { delivered: 4, retrying: 0, failed: 2 },
  )
})
