import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import type { Pool } from '../../src/db/pool.ts'
import { deliveryId } from '../../src/dispatch/match.ts'
import type { Recorded } from './durable-receiver.ts'

/** FAULTS_FULL=1 runs the heavy variants (more kills, more changes, longer outages). */
export const full = process.env.FAULTS_FULL === '1'

const children = new Set<ChildProcess>()
const reapAll = () => {
  for (const c of children) c.kill('SIGKILL')
}
process.once('exit', reapAll)
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    reapAll()
    process.exit(1)
  })
}

/** Spawned workers die with this test process, even when the runner kills it for a timeout. */
export function reaped<T extends ChildProcess>(child: T): T {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** Ids of rows written in transactions that roll back start here; none may ever be delivered. */
export const doomedIdBase = 10_000_000

/** One transaction of the writer: insert rows `from`..`from + size - 1`, then commit or roll back. */
async function writeBatch(pool: Pool, table: string, from: number, size: number, commit: boolean) {
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    await client.query('begin')
    await client.query(`insert into ${table} (id) select generate_series($1::int, $2::int)`, [
      from,
      from + size - 1,
    ])
    await client.query(commit ? 'commit' : 'rollback')
  } catch (err) {
    broken = err as Error
    throw err
  } finally {
    client.release(broken)
  }
}

/**
 * Inserts `total` rows into `table` (id int primary key) in small transactions, paced to last
 * about `durationMs`; every fifth transaction inserts rows with doomed ids and rolls back.
 * Errors (a database going away) are waited out and the next batch gets new ids; the database
 * itself is the record of what committed. Resolves when all `total` ids have been tried.
 */
export async function writeChanges(pool: Pool, table: string, total: number, durationMs: number) {
  let next = 1
  let doomed = doomedIdBase
  const pauseMs = Math.max(1, Math.floor(durationMs / Math.ceil(total / 10)))
  for (let tx = 0; next <= total; tx++) {
    const commit = tx % 5 !== 4
    const size = commit ? Math.min(1 + (tx % 19), total - next + 1) : 5
    await writeBatch(pool, table, commit ? next : doomed, size, commit).catch(() => delay(100))
    // A failed commit may still have committed: never reuse its ids.
    if (commit) next += size
    else doomed += size
    await delay(pauseMs)
  }
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
