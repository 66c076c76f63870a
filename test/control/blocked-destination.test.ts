import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { webhookObserver } from '../helpers/webhook-observer.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api } from '../ops/helpers.ts'

let db: TestDatabase
let receiver: Receiver
let worker: TestWorker

before(async () => {
  db = await createTestDatabase('create table items (id int primary key)')
  receiver = await startReceiver()
  // The third request is refused for 2 s; every other one is accepted.
  receiver.reply((r) =>
    receiver.requests.indexOf(r) === 2 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 200 },
  )
  const dir = await observersDir({
    'plain.json': webhookObserver(
      'plain',
      'items',
      { url: receiver.url, body_template: { id: '{{ id }}' } },
      { max_attempts: 5, initial_delay_ms: 50 },
    ),
  })
  worker = await runWorker(db.url, dir, { OBSERVERS_CONCURRENCY: '1' })
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

test('a 429 with Retry-After holds every delivery to that destination, not just the refused one', async () => {
  await db.pool.query('insert into items select generate_series(1, 8)')
  await eventually(() => receiver.requests.length >= 9, 30_000, 'every delivery and the retry')
  const refused = receiver.requests[2]?.at as number
  const next = receiver.requests[3]?.at as number
  assert.ok(next - refused >= 2000, `nothing went for 2 s after the 429 (${next - refused} ms)`)
  const ids = receiver.requests.map((r) => (JSON.parse(r.body) as { id: number }).id)
  assert.deepEqual(
    [...new Set(ids)].sort((a, b) => a - b),
    [1, 2, 3, 4, 5, 6, 7, 8],
  )
  const metrics = await api(worker.worker, '/metrics')
  assert.match(metrics.body, /observers_rate_limit_waits_total\{observer="plain",reason="blocked"\} [1-9]/)
})
