import { readFileSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import type { Pool } from '../../src/db/pool.ts'
import { deliveryId } from '../../src/dispatch/match.ts'
import type { Recorded } from '../helpers/durable-receiver.ts'

/** FAULTS_FULL=1 runs the heavy variants (more kills, more changes, longer outages). */
export const full = process.env.FAULTS_FULL === '1'

/** Ids of rows written in transactions that roll back start here; none may ever be delivered. */
export const doomedIdBase = 10_000_000

export interface Writer {
  /** Resolves when `total` committed-intent rows are written (or stop() was called). */
  done: Promise<void>
  written(): number
  stop(): void
}

/**
 * Inserts `total` rows into `table` (id int primary key) in small transactions, paced to last
 * about `durationMs`; every fifth transaction inserts rows with doomed ids and rolls back.
 * Errors (a database going away) are waited out and the batch tried again with new ids;
 * the database itself is the record of what committed.
 */
export function startWriter(pool: Pool, table: string, total: number, durationMs: number): Writer {
  let next = 1
  let doomed = doomedIdBase
  let stopped = false
  const batches = Math.ceil(total / 10)
  const pauseMs = Math.max(1, Math.floor(durationMs / batches))
  const run = async () => {
    for (let tx = 0; next <= total && !stopped; tx++) {
      const rollback = tx % 5 === 4
      const size = rollback ? 5 : Math.min(1 + (tx % 19), total - next + 1)
      const from = rollback ? doomed : next
      try {
        const client = await pool.connect()
        try {
          await client.query('begin')
          await client.query(`insert into ${table} (id) select generate_series($1::int, $2::int)`, [
            from,
            from + size - 1,
          ])
          await client.query(rollback ? 'rollback' : 'commit')
        } finally {
          client.release()
        }
      } catch {
        await delay(100)
      }
      // A failed commit may still have committed: never reuse its ids.
      if (rollback) doomed += size
      else next += size
      await delay(pauseMs)
    }
  }
  const done = run()
  const stop = () => {
    stopped = true
  }
  return { done, written: () => next - 1, stop }
}

export interface Audit {
  expected: number
  delivered: number
  distinct: number
  duplicates: number
  missing: string[]
  /** Deliveries of changes that are not in the change log (e.g. rolled back). */
  unexpected: string[]
  /** Rows that were delivered under more than one delivery id. */
  rowsWithSeveralIds: string[]
}

/**
 * Compares what the receiver acknowledged with what committed: one expected delivery per
 * change-log row of `entity` (the delivery id is derived from the change's id).
 */
export async function audit(
  pool: Pool,
  entity: string,
  observer: string,
  records: Recorded[],
): Promise<Audit> {
  const { rows } = await pool.query<{ id: string; entity_id: string }>(
    'select id, entity_id from observers.change_log where entity = $1',
    [entity],
  )
  const expected = new Map(rows.map((r) => [deliveryId(r.id, observer, 0), r.entity_id]))
  const seen = new Map<string, number>()
  const idsByRow = new Map<string, Set<string>>()
  for (const r of records) {
    const id = r.deliveryId ?? '(none)'
    seen.set(id, (seen.get(id) ?? 0) + 1)
    const row = rowOf(r)
    idsByRow.set(row, (idsByRow.get(row) ?? new Set()).add(id))
  }
  return {
    expected: expected.size,
    delivered: records.length,
    distinct: seen.size,
    duplicates: records.length - seen.size,
    missing: [...expected.keys()].filter((id) => !seen.has(id)),
    unexpected: [...seen.keys()].filter((id) => !expected.has(id)),
    rowsWithSeveralIds: [...idsByRow].filter(([, ids]) => ids.size > 1).map(([row]) => row),
  }
}

function rowOf(r: Recorded): string {
  try {
    return String((JSON.parse(r.body) as { entity_id: string }).entity_id)
  } catch {
    return r.path
  }
}

export function duplicateLine(a: Audit): string {
  const pct = a.delivered === 0 ? 0 : (100 * a.duplicates) / a.delivered
  return `duplicates: ${a.duplicates} of ${a.delivered} (${pct.toFixed(2)}%)`
}

/** Resident set size of a process in MB, from /proc; undefined once it has exited. */
export function rssMb(pid: number): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    return kb ? Number(kb) / 1024 : undefined
  } catch {
    return undefined
  }
}

/** GET /readyz on the worker's ops port: the status code, or 0 when nothing answers. */
export async function readyz(port: number): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(5000) })
    await res.arrayBuffer()
    return res.status
  } catch {
    return 0
  }
}

export const randomBetween = (min: number, max: number) => min + Math.floor(Math.random() * (max - min))
