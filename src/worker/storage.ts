import { actionTypes } from '../actions/registry.ts'
import type { Config } from '../config/config.ts'
import { type Database, openDatabase } from '../db/connect.ts'
import { migrate } from '../db/migrate.ts'
import { createPool, type Pool } from '../db/pool.ts'
import { checkConnections } from '../db/preflight.ts'
import { createDemoTable } from '../demo/demo.ts'
import type { Logger } from '../log/log.ts'
import { ensureQueues, type Queue, startQueue } from '../queue/boss.ts'
import type { Closer } from './closer.ts'

export interface Storage {
  db: Database
  pool: Pool
  queue: Queue
  /** DATABASE_URL is a transaction-mode pooler: no LISTEN on it. */
  pooled: boolean
}

/**
 * The database (embedded when DATABASE_URL is unset), its pool and the job queue. Only the
 * embedded database is migrated here: against DATABASE_URL, `observers migrate` (the release
 * phase) runs the DDL and the worker only checks it.
 */
export async function openStorage(config: Config, log: Logger, closer: Closer): Promise<Storage> {
  const db = closer.opened(await openDatabase(config, (msg) => log.info(msg)), (d) => d.close())
  const max = Math.max(2, Math.ceil(config.dbPoolSize / 2))
  const pool = closer.opened(createPool(db.url, { max, pipeline: true }), (p) => p.end())
  const pooled = db.embedded ? false : await checkConnections(pool, db, log)
  const queue = closer.opened(
    await startQueue(db.url, { log, poolSize: config.dbPoolSize, migrate: db.embedded !== undefined }),
    (q) => q.stop({ graceful: false, close: true }),
  )
  if (db.embedded) {
    await migrate(pool)
    await createDemoTable(pool)
  }
  await ensureQueues(queue, actionTypes.keys(), config.dlqRetentionDays)
  return { db, pool, queue, pooled }
}
