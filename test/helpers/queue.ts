import { after, before } from 'node:test'
import { createLogger } from '../../src/log/log.ts'
import { ensureQueues, type Queue, startQueue } from '../../src/queue/boss.ts'
import { createTestDatabase, type TestDatabase } from './db.ts'

/**
 * A database of the file's own with pg-boss started on it (no supervision: a test runs expiry
 * itself) and the webhook queues created; opened before the file's tests and closed after them.
 */
export function queueFixture(): { readonly db: TestDatabase; readonly boss: Queue } {
  let db: TestDatabase | undefined
  let boss: Queue | undefined
  before(async () => {
    db = await createTestDatabase()
    boss = await startQueue(db.url, { log: createLogger('silent'), poolSize: 2, supervise: false })
    await ensureQueues(boss, ['webhook'], 30)
  })
  after(async () => {
    await boss?.stop({ graceful: false, close: true })
    await db?.drop()
  })
  return {
    get db() {
      if (!db) throw new Error('queueFixture: used before its before() hook ran')
      return db
    },
    get boss() {
      if (!boss) throw new Error('queueFixture: used before its before() hook ran')
      return boss
    },
  }
}
