import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

const holdMs = 400
let db: TestDatabase
let limited: Receiver
let open: Receiver
const workers: TestWorker[] = []

before(async () => {
  db = await createTestDatabase()
  limited = await startReceiver()
  open = await startReceiver()
  for (const r of [limited, open]) r.reply(() => ({ status: 200, delayMs: holdMs }))
  await db.pool.query('create table tasks (id int primary key)')
  const dir = await observersDir({
    'limited.json': {
      name: 'limited',
      entity: 'tasks',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: limited.url, max_concurrency: 2 }],
    },
    'open.json': {
      name: 'open',
      entity: 'tasks',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: open.url }],
    },
  })
  workers.push(await runWorker(db.url, dir, { OBSERVERS_CONCURRENCY: '8' }))
})

after(async () => {
  for (const w of workers) await w.stop()
  await limited?.close()
  await open?.close()
  await db?.drop()
})

/** Most requests a receiver held at once: each is held holdMs from its arrival. */
function peak(r: Receiver): number {
  const starts = r.requests.map((q) => q.at)
  return Math.max(...starts.map((t) => starts.filter((s) => s <= t && s > t - holdMs + 20).length))
}

test('max_concurrency caps deliveries in flight to a destination', async () => {
  await db.pool.query('insert into tasks select generate_series(1, 12)')
  await eventually(
    () => limited.requests.length >= 12 && open.requests.length >= 12,
    30_000,
    'all deliveries',
  )
  assert.ok(peak(open) > 2, `without a limit, deliveries overlap (peak ${peak(open)})`)
  assert.ok(peak(limited) <= 2, `max_concurrency 2 held (peak ${peak(limited)})`)
})
