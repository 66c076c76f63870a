import { ConfigError, ErrorCode } from '../errors/errors.ts'
import type { Logger } from '../log/log.ts'
import { type Database, sharesSessions } from './connect.ts'
import { checkSchema } from './migrate.ts'
import type { Pool } from './pool.ts'

/**
 * Read-only checks of a database the worker did not start: its schema is migrated, and LISTEN
 * and the session advisory locks get a session of their own. True when DATABASE_URL goes
 * through a transaction-mode pooler.
 */
export async function checkConnections(pool: Pool, db: Database, log: Logger): Promise<boolean> {
  await checkSchema(pool, log)
  const pooled = await sharesSessions(db.url)
  if (pooled && db.directUrl === db.url) {
    throw new ConfigError(
      ErrorCode.InvalidConfig,
      "DATABASE_URL goes through a transaction-mode pooler (two connections shared one server session), but LISTEN and the dispatcher's session advisory locks need a session of their own: set DATABASE_DIRECT_URL to a direct connection to the same database (or the pooler's session-mode address)",
    )
  }
  if (pooled)
    log.info('DATABASE_URL is a transaction-mode pooler: LISTEN and leadership use DATABASE_DIRECT_URL')
  return pooled
}
