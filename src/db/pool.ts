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

export function createPool(
  connectionString: string,
  opts: { max?: number; name?: string; pipeline?: boolean } = {},
): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: opts.max ?? 10,
    application_name: opts.name ?? 'pg-observers',
    connectionTimeoutMillis: 10_000,
    // Statements issued without waiting for the one before go in one round trip (withTransaction's
    // BEGIN with the first statement, its COMMIT with the statements given to `later`). Nothing
    // of ours keeps a portal open across round trips, which pipelining refuses.
    pipeline: opts.pipeline ?? false,
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

/**
 * Hands a statement to the transaction without waiting for its result: the COMMIT is sent right
 * behind it, in its round trip on a pipelined connection. A failure rolls the transaction back
 * and is what withTransaction throws.
 */
export type Later = <R>(statement: Promise<R>) => Promise<R>

/**
 * Runs `fn` in a transaction on one client; rolls back on any error. BEGIN is not waited for
 * either: on a pipelined connection it shares the first statement's round trip. It cannot fail
 * alone on a live session (a dead one fails every statement after it), so nothing runs outside
 * the transaction.
 */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient, later: Later) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const client = await pool.connect()
  const pending: Promise<unknown>[] = []
  const later: Later = (statement) => {
    pending.push(statement)
    // Handled here and thrown below: it may fail before anything awaits it.
    statement.catch(() => {})
    return statement
  }
  let broken: Error | undefined
  try {
    const begun = later(
      client.query(options.asyncCommit ? 'begin; set local synchronous_commit = off' : 'begin'),
    )
    const result = await fn(client, later)
    const commit = later(client.query('commit'))
    await begun
    for (const outcome of await Promise.allSettled(pending))
      if (outcome.status === 'rejected') throw outcome.reason
    // COMMIT of a transaction a statement failed in answers ROLLBACK, not an error.
    if ((await commit).command !== 'COMMIT') throw new Error('the transaction was rolled back')
    return result
  } catch (err) {
    await client.query('rollback').catch((e: unknown) => {
      broken = e instanceof Error ? e : new Error(String(e))
    })
    throw err
  } finally {
    // A connection that cannot even roll back is not handed to the next caller.
    client.release(broken)
  }
}
