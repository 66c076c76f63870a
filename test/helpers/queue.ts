import { after, before } from 'node:test'
import { createLogger } from '../../src/log/log.ts'
import { adapter, ensureQueues, type Queue, startQueue } from '../../src/queue/boss.ts'
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

/**
 * The `data.name` of the jobs pg-boss's own fetch would take from `queue` now, sorted; the fetch
 * is rolled back. `groupConcurrency` as the caller's own fetch passes it.
 */
export async function bossWouldTake(
  fixture: { readonly db: TestDatabase; readonly boss: Queue },
  queue: string,
  batchSize: number,
  groupConcurrency?: { default: number; tiers: Record<string, number> },
): Promise<string[]> {
  const client = await fixture.db.pool.connect()
  try {
    await client.query('begin')
    const jobs = await fixture.boss.fetch<{ name: string }>(queue, {
      batchSize,
      ...(groupConcurrency === undefined ? {} : { groupConcurrency }),
      db: adapter(client),
    })
    return jobs.map((j) => j.data.name).sort()
  } finally {
    await client.query('rollback')
    client.release()
  }
}
