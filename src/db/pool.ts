import pg from 'pg'
import { parseExact } from '../json/exact.ts'

/**
 * json/jsonb arrive through parseExact so bigint and numeric values keep their digits.
 * pg's type registry is process-wide, which is what we want: pg-boss reads its job
 * payloads through the same driver.
 */
pg.types.setTypeParser(pg.types.builtins.JSON, parseExact)
pg.types.setTypeParser(pg.types.builtins.JSONB, parseExact)

export type Pool = pg.Pool
export type PoolClient = pg.PoolClient
export type Queryable = Pick<pg.Pool, 'query'>

export function createPool(connectionString: string, opts: { max?: number; name?: string } = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: opts.max ?? 10,
    application_name: opts.name ?? 'pg-observers',
    connectionTimeoutMillis: 10_000,
  })
  // An idle client losing its connection (database restart, pg_terminate_backend) must not
  // crash the process; the next checkout opens a fresh connection.
  pool.on('error', () => {})
  // pg-pool listens for errors only on idle clients. A checked-out client whose connection dies
  // between statements would emit an unheard 'error' and end the process; its next statement
  // fails instead, and the caller's error handling takes over.
  pool.on('connect', (client) => client.on('error', () => {}))
  return pool
}

export interface TransactionOptions {
  /**
   * Commit without waiting for the WAL flush (`synchronous_commit = off` for this transaction
   * only). Only for writes whose loss in a server crash is harmless: the few hundred milliseconds
   * of them a crash can take back are undone whole, never half.
   */
  asyncCommit?: boolean
}

/** Runs `fn` in a transaction on one client; rolls back on any error. */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const client = await pool.connect()
  try {
    await client.query(options.asyncCommit ? 'begin; set local synchronous_commit = off' : 'begin')
    const result = await fn(client)
    await client.query('commit')
    return result
  } catch (err) {
    await client.query('rollback').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}
