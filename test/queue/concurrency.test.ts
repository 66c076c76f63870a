import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

/** A receiver holding each request `holdMs`, counting how many it held at once at most. */
async function countingReceiver(holdMs: number) {
  const state = { open: 0, peak: 0, received: [] as string[] }
  const server = http.createServer((req, res) => {
    state.open++
    state.peak = Math.max(state.peak, state.open)
    state.received.push(req.url ?? '')
    req.resume()
    setTimeout(() => {
      state.open--
      res.end()
    }, holdMs)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, state, close: () => new Promise<void>((r) => server.close(() => r())) }
}

let db: TestDatabase
let receiver: Awaited<ReturnType<typeof countingReceiver>>
let worker: TestWorker | undefined

before(async () => {
  db = await createTestDatabase('create table tasks (id int primary key)')
  receiver = await countingReceiver(300)
  const observer = (name: string, extra: Record<string, unknown>, action: Record<string, unknown> = {}) => ({
    name,
    entity: 'tasks',
    events: ['INSERT'],
    ...extra,
    actions: [{ type: 'webhook', url: `${receiver.url}/${name}`, ...action }],
  })
  const dir = await observersDir({
    'plain.json': observer('plain', {}),
    'ordered.json': observer('ordered', { ordering: 'entity' }),
    'limited.json': observer('limited', {}, { max_concurrency: 10 }),
  })
  worker = await runWorker(db.url, dir, { OBSERVERS_CONCURRENCY: '2' })
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

test('OBSERVERS_CONCURRENCY caps requests in flight per action type across plain, ordered and limited queues', async () => {
  await db.pool.query('insert into tasks select generate_series(1, 8)')
  await eventually(() => receiver.state.received.length >= 24, 60_000, 'all 24 deliveries')
  for (const name of ['plain', 'ordered', 'limited']) {
    assert.equal(receiver.state.received.filter((p) => p === `/${name}`).length, 8, `${name} got every row`)
  }
  assert.ok(receiver.state.peak <= 2, `at most 2 requests open at once (peak ${receiver.state.peak})`)
})
