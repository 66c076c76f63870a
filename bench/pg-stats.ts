import type { Pool } from '../src/db/pool.ts'
import { round } from './stats.ts'

/** One statement's share of the server's execution time, from pg_stat_statements. */
export interface StatementCost {
  sql: string
  calls: number
  /** Execution time per delivered event, µs (commit not included). */
  usPerEvent: number
  /** Planning time per delivered event, µs (0 unless pg_stat_statements.track_planning is on). */
  planUsPerEvent: number
  msPerCall: number
}

/** True when pg_stat_statements is loaded and readable in this database. */
export async function enableStatementStats(pool: Pool): Promise<boolean> {
  try {
    await pool.query('create extension if not exists pg_stat_statements')
    await pool.query('select pg_stat_statements_reset()')
    return true
  } catch {
    return false
  }
}

export async function resetStatementStats(pool: Pool, enabled: boolean): Promise<void> {
  if (enabled) await pool.query('select pg_stat_statements_reset()')
}

/** The statements of this database that took the most execution time since the last reset. */
export async function statementCosts(
  pool: Pool,
  enabled: boolean,
  events: number,
  limit = 8,
): Promise<{ totalUsPerEvent: number; planUsPerEvent: number; top: StatementCost[] } | null> {
  if (!enabled) return null
  const { rows } = await pool.query<{ sql: string; calls: string; total_ms: number; plan_ms: number }>(
    `select left(regexp_replace(query, '\\s+', ' ', 'g'), 120) as sql, calls,
            total_exec_time as total_ms, total_plan_time as plan_ms
       from pg_stat_statements
      where dbid = (select oid from pg_database where datname = current_database())
        and query not like '%pg_stat_statements%'
      order by total_exec_time + total_plan_time desc`,
  )
  const total = rows.reduce((sum, r) => sum + r.total_ms, 0)
  const plan = rows.reduce((sum, r) => sum + r.plan_ms, 0)
  return {
    totalUsPerEvent: round((total * 1000) / events, 1),
    planUsPerEvent: round((plan * 1000) / events, 1),
    top: rows.slice(0, limit).map((r) => ({
      sql: r.sql,
      calls: Number(r.calls),
      usPerEvent: round((r.total_ms * 1000) / events, 1),
      planUsPerEvent: round((r.plan_ms * 1000) / events, 1),
      msPerCall: round(r.total_ms / Number(r.calls), 3),
    })),
  }
}
