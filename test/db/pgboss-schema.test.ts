import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { getRollbackPlans } from 'pg-boss'
import { createLogger } from '../../src/log/log.ts'
import { bossSchema, startQueue } from '../../src/queue/boss.ts'
import type { TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { observersDir, startWorkerWithDatabase } from '../helpers/worker.ts'
import { deadLetters, hookObserver } from '../ops/helpers.ts'

let db: TestDatabase
let receiver: Receiver

const views = ['dlq', 'pending_retries', 'retry_exhausted', 'recent_failures']

// pg-boss schema 34 added the dead-letter columns (source_name, ...); rolling it back drops them.
const rollbackTo = 33

async function bossVersion(): Promise<number> {
  const { rows } = await db.pool.query<{ version: number }>(`select version from ${bossSchema}.version`)
  return rows[0]!.version
}

async function viewRows(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  for (const v of views) {
    const { rows } = await db.pool.query<{ n: number }>(`select count(*)::int as n from observers.${v}`)
    counts[v] = rows[0]!.n
  }
  return counts
}

before(async () => {
  receiver = await startReceiver()
  receiver.reply([{ status: 410 }])
  const dir = await observersDir({ 'gone.json': hookObserver('gone', 'items', receiver.url) })
  const started = await startWorkerWithDatabase('create table items (id int primary key)', dir)
  db = started.db
  await db.pool.query('insert into items values (1)')
  await deadLetters(db.pool, 'gone')
  await started.worker.stop()
})

after(async () => {
  await receiver?.close()
  await db?.drop()
})

test("pg-boss's documented rollback and migration run with the inspection views in place", async () => {
  const current = await bossVersion()
  const before = await viewRows()
  assert.equal(before.dlq, 1)
  for (let v = current; v > rollbackTo; v--) await db.pool.query(getRollbackPlans(bossSchema, v))
  assert.equal(await bossVersion(), rollbackTo)
  assert.deepEqual(await viewRows(), before, 'the views still answer on the older pg-boss schema')
  const { rows } = await db.pool.query('select observer, source_queue from observers.dlq')
  assert.deepEqual(rows, [{ observer: 'gone', source_queue: null }])
  const queue = await startQueue(db.url, { log: createLogger('warn'), poolSize: 2, supervise: false })
  await queue.stop({ graceful: false, close: true })
  assert.equal(await bossVersion(), current)
  assert.deepEqual(await viewRows(), before)
})
