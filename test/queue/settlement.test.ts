import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

// A job may stay active for its timeout plus 5 s. Two answers this slow, one after the other,
// outlast that, so a job fetched before a slot was free to run it would expire while it waited.
// Each answer comes 4 s inside the timeout, so a loaded machine does not turn it into one.
const timeoutMs = 13_500
const answerMs = 9_500

let db: TestDatabase
let receiver: Receiver
let worker: TestWorker | undefined

before(async () => {
  db = await createTestDatabase('create table slow (id int primary key)')
  receiver = await startReceiver()
  receiver.reply(() => ({ status: 200, delayMs: answerMs }))
  const dir = await observersDir({
    'slow.json': {
      name: 'slow',
      entity: 'slow',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: receiver.url, timeout_ms: timeoutMs }],
    },
  })
  worker = await runWorker(db.url, dir, { OBSERVERS_CONCURRENCY: '1' })
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

test('a slow receiver gets each row exactly once and every delivery completes', async () => {
  await db.pool.query('insert into slow values (1), (2)')
  const states = await eventually(
    async () => {
      const { rows } = await db.pool.query<{ state: string }>(
        `select state from pgboss.job where name like 'observers.webhook%' order by data -> 'event' ->> 'entity_id'`,
      )
      const settled = rows.filter((r) => r.state === 'completed' || r.state === 'failed')
      return rows.length === 2 && settled.length === 2 ? rows.map((r) => r.state) : undefined
    },
    90_000,
    'both deliveries settled',
  )
  assert.deepEqual(states, ['completed', 'completed'])
  const ids = receiver.requests.map((r) => (JSON.parse(r.body) as { after: { id: number } }).after.id)
  assert.deepEqual(ids.toSorted(), [1, 2], `each row arrives once (got ${JSON.stringify(ids)})`)
  assert.deepEqual(
    (await db.pool.query(`select 1 from observers.dlq where observer = 'slow'`)).rows,
    [],
    'nothing dead-lettered',
  )
})
