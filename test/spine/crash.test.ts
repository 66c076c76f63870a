import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { exited, spawnCli, waitForOutput } from '../helpers/process.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir } from '../helpers/worker.ts'

let db: TestDatabase
let receiver: Receiver
let env: Record<string, string>

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  // Slow answers keep deliveries in flight when the worker is killed.
  receiver.reply(() => ({ status: 200 }))
  await db.pool.query('create table payments (id int primary key, amount int not null)')
  const dir = await observersDir({
    'payments.json': {
      name: 'payments',
      entity: 'payments',
      events: ['INSERT'],
      retry: { max_attempts: 10, initial_delay_ms: 100, backoff_strategy: 'fixed' },
      actions: [
        {
          type: 'webhook',
          url: receiver.url,
          timeout_ms: 1000,
          headers: { 'x-delivery-id': '{{ delivery_id }}' },
        },
      ],
    },
  })
  env = { DATABASE_URL: db.url, OBSERVERS_DIR: dir, PORT: '0', OBSERVERS_DISPATCH_POLL_MS: '200' }
})

after(async () => {
  await receiver?.close()
  await db?.drop()
})

test('SIGKILL mid-stream: every committed change is delivered, duplicates share a delivery id', async () => {
  const first = spawnCli(['start'], env)
  await waitForOutput(first, /loaded 1 observer/)
  const total = 600
  let inserted = 0
  const writer = (async () => {
    while (inserted < total) {
      await db.pool.query('insert into payments select g, g from generate_series($1::int, $1::int + 19) g', [
        inserted + 1,
      ])
      inserted += 20
      await new Promise((r) => setTimeout(r, 10))
    }
  })()
  await eventually(() => receiver.requests.length > 100, 30_000, 'deliveries under way')
  first.kill('SIGKILL')
  assert.equal((await exited(first)).signal, 'SIGKILL')
  await writer
  const second = spawnCli(['start'], env)
  try {
    await eventually(
      () => new Set(receiver.requests.map((r) => JSON.parse(r.body).after.id)).size >= total,
      90_000,
      'all deliveries',
    )
    const byId = new Map<number, Set<string>>()
    for (const r of receiver.requests) {
      const id = JSON.parse(r.body).after.id as number
      const ids = byId.get(id) ?? new Set()
      ids.add(String(r.headers['x-delivery-id']))
      byId.set(id, ids)
    }
    assert.equal(byId.size, total)
    for (const [id, deliveries] of byId)
      assert.equal(deliveries.size, 1, `row ${id}: duplicates carry one event id`)
  } finally {
    second.kill('SIGTERM')
    const { code } = await exited(second)
    assert.equal(code, 0, 'SIGTERM drains and exits 0')
  }
})
