import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { runCli } from './helpers.ts'

let db: TestDatabase
let worker: TestWorker
let receiver: Receiver
let env: Record<string, string>

const updates = 11

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  await db.pool.query('create table counters (id int primary key, n int not null)')
  const dir = await observersDir({
    'counter.json': {
      name: 'counter',
      entity: 'counters',
      events: ['UPDATE'],
      ordering: 'entity',
      actions: [
        {
          type: 'webhook',
          url: `${receiver.url}/counter`,
          headers: { 'x-delivery': '{{ delivery_id }}' },
        },
      ],
    },
  })
  worker = await runWorker(db.url, dir, { OBSERVERS_CONCURRENCY: '4' })
  env = { DATABASE_URL: db.url, OBSERVERS_DIR: dir }
  await db.pool.query('insert into counters values (1, 0)')
  for (let i = 1; i <= updates; i++) await db.pool.query('update counters set n = $1 where id = 1', [i])
  await receiver.waitFor(updates)
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

const counterOf = (body: string) => (JSON.parse(body) as { after: { n: number } }).after.n

test('replay delivers the changes of one row in commit order, with their original delivery ids', async () => {
  const original = receiver.requests.slice(0, updates)
  assert.deepEqual(
    original.map((r) => counterOf(r.body)),
    Array.from({ length: updates }, (_, i) => i + 1),
  )
  const res = await runCli(['replay', '--since', '1h', '--include-delivered', '--json'], env)
  assert.equal(res.code, 0, res.output)
  const out = JSON.parse(res.stdout)
  assert.deepEqual([out.changes, out.deliveries], [updates + 1, updates])
  const replayed = (await receiver.waitFor(2 * updates)).slice(updates)
  assert.deepEqual(
    replayed.map((r) => counterOf(r.body)),
    original.map((r) => counterOf(r.body)),
  )
  assert.deepEqual(
    replayed.map((r) => r.headers['x-delivery']),
    original.map((r) => r.headers['x-delivery']),
  )
})
