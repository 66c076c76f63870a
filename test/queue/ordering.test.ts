import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

let db: TestDatabase
let receiver: Receiver
let worker: TestWorker

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  await db.pool.query('create table counters (id int primary key, n int not null)')
  const dir = await observersDir({
    'ordered.json': {
      name: 'ordered',
      entity: 'counters',
      events: ['INSERT', 'UPDATE'],
      ordering: 'entity',
      retry: { max_attempts: 5, initial_delay_ms: 50, backoff_strategy: 'fixed' },
      actions: [
        { type: 'webhook', url: receiver.url, body_template: { id: '{{ after.id }}', n: '{{ n }}' } },
      ],
    },
  })
  // Random latency and an occasional 503 make out-of-order delivery likely if ordering were not enforced.
  let count = 0
  receiver.reply(() => {
    count++
    return count % 7 === 0 ? { status: 503 } : { status: 200 }
  })
  worker = await runWorker(db.url, dir)
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

test('ordering "entity": each row\'s deliveries arrive in commit order while rows interleave', async () => {
  const rows = 5
  const updates = 12
  await db.pool.query('insert into counters select g, 0 from generate_series(1, $1::int) g', [rows])
  for (let n = 1; n <= updates; n++) await db.pool.query('update counters set n = $1', [n])
  const total = rows * (updates + 1)
  await eventually(
    () => new Set(receiver.requests.map((r) => r.body)).size >= total,
    60_000,
    'all deliveries',
  )
  const seen = new Map<number, number[]>()
  for (const r of receiver.requests) {
    const { id, n } = JSON.parse(r.body) as { id: number; n: number }
    const list = seen.get(id) ?? []
    // A retried delivery repeats its own position; any other step must move forward.
    if (list.at(-1) !== n) list.push(n)
    seen.set(id, list)
  }
  for (const [id, ns] of seen) {
    assert.deepEqual(
      ns,
      Array.from({ length: updates + 1 }, (_, i) => i),
      `row ${id} in commit order`,
    )
  }
})
