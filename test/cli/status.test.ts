import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { observersDir, startWorkerWithDatabase, type TestWorker } from '../helpers/worker.ts'
import { deadLetters, holdUndispatched, hookObserver } from '../ops/helpers.ts'
import { runCli, runCliInProcess } from './helpers.ts'

let db: TestDatabase
let worker: TestWorker
let receiver: Receiver
let env: Record<string, string>

before(async () => {
  receiver = await startReceiver()
  receiver.reply([{ status: 410 }])
  const dir = await observersDir({ 'gone.json': hookObserver('gone', 'items', receiver.url) })
  ;({ db, worker } = await startWorkerWithDatabase('create table items (id int primary key)', dir, {
    OBSERVERS_CONCURRENCY: '4',
  }))
  env = { DATABASE_URL: db.url, OBSERVERS_DIR: dir, OBSERVERS_LAG_WARN_SECONDS: '60' }
  await db.pool.query('insert into items values (1)')
  await deadLetters(db.pool, 'gone')
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

test('status --json reports backlog, dead letters, workers and every queue', async () => {
  const res = await runCli(['status', '--json'], env)
  assert.equal(res.code, 0, res.output)
  const s = JSON.parse(res.stdout)
  assert.deepEqual(s.backlog, { undispatched: 0, oldest_age_seconds: null, keeping_up: true })
  assert.equal(s.dlq_size, 1)
  assert.equal(s.workers, 1)
  assert.equal(s.dispatcher_leader, true)
  assert.ok(s.queue_connections >= 1)
  const names = s.queues.map((q: { queue: string }) => q.queue)
  assert.ok(names.includes('observers.webhook'))
  assert.ok(names.includes('observers.webhook.ordered'))
  assert.ok(!names.includes('observers.dlq'))
  const webhook = s.queues.find((q: { queue: string }) => q.queue === 'observers.webhook')
  assert.equal(webhook.failed, 1, 'the failed source job is still retained')
})

test('status shows a lagging change log as not keeping up', async () => {
  const held = await holdUndispatched(db.pool, 120)
  try {
    const json = await runCliInProcess(['status', '--json'], env)
    const s = JSON.parse(json.stdout)
    assert.equal(s.backlog.undispatched, 1)
    assert.ok(s.backlog.oldest_age_seconds >= 120)
    assert.equal(s.backlog.keeping_up, false)
    const table = await runCliInProcess(['status'], env)
    assert.equal(table.code, 0, table.output)
    assert.match(table.stdout, /1 undispatched, oldest \d+(\.\d)? s/)
    assert.match(table.stdout, /NO \(warn above 1000 rows or 60 s\)/)
    assert.match(table.stdout, /1 running, dispatcher active/)
  } finally {
    await held.release()
  }
})
