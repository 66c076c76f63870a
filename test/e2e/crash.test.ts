import { after, before, test } from 'node:test'
import { killMidStream } from '../helpers/crash.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { cliWorkerEnv, trackedWebhook } from '../helpers/process.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'

let db: TestDatabase
let receiver: Receiver
let env: Record<string, string>

before(async () => {
  db = await createTestDatabase('create table payments (id int primary key, amount int not null)')
  receiver = await startReceiver()
  // Slow answers keep deliveries in flight when the worker is killed.
  receiver.reply(() => ({ status: 200 }))
  const payments = trackedWebhook({
    name: 'payments',
    url: receiver.url,
    retry: { max_attempts: 10, initial_delay_ms: 100, backoff_strategy: 'fixed' },
    timeoutMs: 1000,
  })
  env = await cliWorkerEnv(db.url, payments, { OBSERVERS_DISPATCH_POLL_MS: '200' })
})

after(async () => {
  await receiver?.close()
  await db?.drop()
})

test('SIGKILL mid-stream: every committed change is delivered, duplicates share a delivery id', async (t) => {
  await killMidStream(t, {
    env,
    receiver,
    total: 600,
    batchSize: 20,
    writeBatch: (first, size) =>
      db.pool.query('insert into payments select g, g from generate_series($1::int, $2::int) g', [
        first,
        first + size - 1,
      ]),
    numberedBy: 'id',
    killAfter: 100,
    deliverWithinMs: 90_000,
  })
})
