import { createHash } from 'node:crypto'
import type pg from 'pg'

/** One of our hot statements, with the name Postgres prepares it under when that is on. */
export interface NamedStatement {
  name: string
  text: string
}

/** Runs our hot statements, prepared once per connection or sent as plain text. */
export interface Statements {
  run(db: Pick<pg.Pool, 'query'>, statement: NamedStatement, values: unknown[]): Promise<pg.QueryResult>
  /**
   * A `db` to hand one pg-boss call whose statement text is fixed and fully parameterised (a job's
   * completion): that statement is prepared like ours. Never for a statement with inlined values.
   */
  adapter(db: Pick<pg.Pool, 'query'>): {
    executeSql(text: string, values?: unknown[]): Promise<pg.QueryResult>
  }
}

/**
 * With `prepared` on, each statement is parsed and planned once per connection (it costs more
 * to plan than to run at light load, docs/performance.md). Off for poolers that cannot keep a
 * prepared statement across transactions (OBSERVERS_PREPARED_STATEMENTS, docs/configuration.md).
 */
export function statements(prepared: boolean): Statements {
  const run: Statements['run'] = (db, { name, text }, values) =>
    prepared ? db.query({ name, text, values }) : db.query(text, values)
  // Few texts ever come through here (the completion, per job table), so names are kept.
  const names = new Map<string, string>()
  const nameOf = (text: string) => {
    let name = names.get(text)
    if (name === undefined) {
      name = `observers_${createHash('sha256').update(text).digest('base64url').slice(0, 24)}`
      names.set(text, name)
    }
    return name
  }
  return {
    run,
    adapter: (db) => ({ executeSql: (text, values = []) => run(db, { name: nameOf(text), text }, values) }),
  }
}
