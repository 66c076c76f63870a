import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { TestClock } from 'pg-boss'
import { statements } from '../../src/db/statements.ts'
import { createLogger } from '../../src/log/log.ts'
import { dlqQueue, ensureQueues, type Queue, queueName, startQueue } from '../../src/queue/boss.ts'
import { markFinalAttempt } from '../../src/queue/pgboss-sql.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'

const dayMs = 86_400_000
const plain = queueName('webhook', 'plain')
const ordered = queueName('webhook', 'ordered')
let db: TestDatabase
let boss: Queue
let clock: TestClock

before(async () => {
  db = await createTestDatabase()
  clock = new TestClock(Date.now())
  boss = await startQueue(db.url, { log: createLogger('silent'), poolSize: 2, supervise: false, clock })
  // Queues as an older version made them, with pg-boss's default retention.
  await boss.createQueue(dlqQueue)
  await boss.createQueue(plain, { deadLetter: dlqQueue })
  await boss.createQueue(ordered, { deadLetter: dlqQueue, policy: 'key_strict_fifo' })
  await ensureQueues(boss, ['webhook'], 30)
})

after(async () => {
  await boss?.stop({ graceful: false, close: true })
  await db?.drop()
})

async function states(marker: string): Promise<string[]> {
  const { rows } = await db.pool.query(
    `select name || ':' || state as s from pgboss.job where data ->> 'marker' = $1 order by 1`,
    [marker],
  )
  return rows.map((r) => r.s as string)
}

test('an outage longer than pg-boss retention deletes no waiting job and releases no ordered hold', async () => {
  await boss.insert(plain, [{ data: { marker: 'waiting', attempts: [] } }])
  // A second apart: jobs created at one instant are ordered within a key by their random ids.
  await boss.insert(ordered, [{ data: { marker: 'held-head', attempts: [] }, singletonKey: 'row-1' }])
  await clock.setTime(clock.now() + 1000)
  await boss.insert(ordered, [{ data: { marker: 'held-next', attempts: [] }, singletonKey: 'row-1' }])
  const [head] = await boss.fetch(ordered, { batchSize: 1 })
  assert.ok(head)
  const record = JSON.stringify({ attempt: 1, at: new Date().toISOString(), code: 'OB007', error: 'gone' })
  await statements(true).run(db.pool, markFinalAttempt, [ordered, head.id, 0, true, record])
  await boss.fail(ordered, head, { error: 'gone' })

  // 20 days on: past pg-boss's defaults (14 days waiting, 7 days after failing), within the DLQ's 30.
  await clock.setTime(clock.now() + 20 * dayMs)
  for (const name of [plain, ordered, dlqQueue]) await boss.supervise(name)

  assert.deepEqual(await states('waiting'), [`${plain}:created`], 'the waiting delivery is still queued')
  assert.deepEqual(
    await states('held-head'),
    [`${ordered}:failed`, `${dlqQueue}:created`].sort(),
    'the failed head is kept, with its dead letter',
  )
  assert.deepEqual(
    await states('held-next'),
    [`${ordered}:created`],
    'the next change of the row still waits',
  )
  assert.deepEqual(await boss.fetch(ordered, { batchSize: 5 }), [], 'and stays held behind the dead letter')
})
