import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import {
  cliWorkerEnv,
  exited,
  spawnCli,
  trackedWebhook,
  untilChild,
  waitUntilReady,
} from '../helpers/process.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'

let db: TestDatabase
let receiver: Receiver
let env: Record<string, string>

before(async () => {
  db = await createTestDatabase('create table jobs (id int primary key)')
  receiver = await startReceiver()
  const slow = trackedWebhook({ name: 'slow', entity: 'jobs', url: receiver.url })
  env = await cliWorkerEnv(db.url, slow, { OBSERVERS_SHUTDOWN_GRACE_MS: '60000' })
})

after(async () => {
  await receiver?.close()
  await db?.drop()
})

test('SIGTERM lets an in-flight action finish, then exits 0', async () => {
  const worker = spawnCli(['start'], env)
  await waitUntilReady(worker, env.PORT!)
  let release = () => {}
  receiver.reply([{ status: 200, until: new Promise<void>((resolve) => (release = resolve)) }])
  await db.pool.query('insert into jobs values (1)')
  await receiver.waitFor(1, 60_000)
  worker.kill('SIGTERM')
  // The request stays open until the worker has begun to stop; it must not exit before that.
  await untilChild(worker, async () => /stopping: no new work/.test(worker.output.join('')), 'stopping')
  release()
  assert.equal((await exited(worker)).code, 0, worker.output.join('').slice(-3000))
  const { rows } = await db.pool.query(`select state from pgboss.job where name = 'observers.webhook'`)
  assert.deepEqual(
    rows.map((r) => r.state),
    ['completed'],
  )
  assert.equal(receiver.requests.length, 1)
})
