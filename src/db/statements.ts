import type pg from 'pg'

/** One of our hot statements, with the name Postgres prepares it under when that is on. */
export interface NamedStatement {
  name: string
  text: string
}

/** Runs our hot statements, prepared once per connection or sent as plain text. */
export interface Statements {
  run(db: Pick<pg.Pool, 'query'>, statement: NamedStatement, values: unknown[]): Promise<pg.QueryResult>
}

/**
 * With `prepared` on, each statement is parsed and planned once per connection (it costs more
 * to plan than to run at light load, docs/performance.md). Off for poolers that cannot keep a
 * prepared statement across transactions (OBSERVERS_PREPARED_STATEMENTS, docs/configuration.md).
 */
export function statements(prepared: boolean): Statements {
  return {
    run: (db, { name, text }, values) =>
      prepared ? db.query({ name, text, values }) : db.query(text, values),
  }
}
