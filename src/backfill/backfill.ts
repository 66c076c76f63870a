import { setTimeout as delay } from 'node:timers/promises'
import { type Pool, withTransaction } from '../db/pool.ts'
import {
  type BackfillState,
  claimBackfill,
  finishPage,
  getBackfill,
  insertBackfill,
  setBackfillState,
} from '../db/queries/backfills.ts'
import { ConfigError, coerceError, ErrorCode } from '../errors/errors.ts'
import { type Observer, ownSource } from '../observers/types.ts'
import { enqueue, type Queue } from '../queue/boss.ts'
import { describeTable, readSnapshots, type SnapshotTable } from './rows.ts'
import { snapshotJobs } from './snapshot-jobs.ts'
import { type Mark, mark, Throttle } from './throttle.ts'

export const backfillDefaults = { pageSize: 500, pauseMs: 100 } as const

export interface BackfillRequest {
  table: string
  where?: string | undefined
  /** Observer names; every observer of the table when empty. */
  observers: readonly string[]
  pageSize: number
  pauseMs: number
}

/** The observers a backfill of `entity` delivers through; OB002 when none. */
export function backfillObservers(
  all: readonly Observer[],
  entity: string,
  names: readonly string[],
): Observer[] {
  const own = all.filter((o) => o.source === ownSource && o.entity === entity)
  for (const name of names) {
    if (!own.some((o) => o.name === name)) {
      throw new ConfigError(ErrorCode.NoMatchingObservers, `no observer named "${name}" watches ${entity}`)
    }
  }
  const chosen = names.length === 0 ? own : own.filter((o) => names.includes(o.name))
  if (chosen.length === 0)
    throw new ConfigError(ErrorCode.NoMatchingObservers, `no observer watches ${entity}`)
  return chosen
}

/** A WHERE clause that does not run against the table is the caller's mistake (OB001). */
async function checkWhere(pool: Pool, table: SnapshotTable, where: string | undefined): Promise<number> {
  try {
    // A parameter sends it over the extended protocol, which runs one statement only: the
    // clause cannot end it and start another.
    const { rows } = await pool.query<{ n: string }>(
      `select count(*) as n from ${table.sqlName} t where $1::boolean${where ? ` and (${where})` : ''}`,
      [true],
    )
    return Number(rows[0]?.n ?? 0)
  } catch (err) {
    throw new ConfigError(
      ErrorCode.InvalidConfig,
      `--where does not apply to ${table.entity}: ${coerceError(err).message}`,
      {
        cause: err,
      },
    )
  }
}

/** Records a new backfill (state `running`, nothing read yet) and returns it. */
export async function createBackfill(
  pool: Pool,
  all: readonly Observer[],
  r: BackfillRequest,
): Promise<BackfillState> {
  const table = await describeTable(pool, r.table)
  const observers = backfillObservers(all, table.entity, r.observers)
  const total = await checkWhere(pool, table, r.where)
  return insertBackfill(pool, {
    entity: table.entity,
    where: r.where,
    observers: observers.map((o) => o.name),
    total,
    pageSize: r.pageSize,
    pauseMs: r.pauseMs,
  })
}

export interface RunOptions {
  signal?: AbortSignal
  onProgress?: (state: BackfillState) => void
}

/**
 * Reads the backfill's table in primary-key order, one page per transaction: the page's rows
 * are read FOR SHARE, queued as snapshot events and the position saved, all or nothing, so a
 * crash loses no row and a resume starts after the last page committed. Pauses between pages
 * (Throttle) so the application's own writes keep their pace. Returns the final state:
 * `done`, `stopped` (aborted, or stopped by another process), or `failed`.
 */
export async function runBackfill(
  deps: { pool: Pool; queue: Queue },
  id: number,
  all: readonly Observer[],
  opts: RunOptions = {},
): Promise<BackfillState> {
  const start = await getBackfill(deps.pool, id)
  if (!start) throw new ConfigError(ErrorCode.InvalidConfig, `no backfill with id ${id}`)
  const table = await describeTable(deps.pool, start.entity)
  const observers = backfillObservers(all, table.entity, start.observers)
  await setBackfillState(deps.pool, id, 'running', null)
  const throttle = new Throttle()
  // Taken only while throttling: the write transactions counted between marks pace the pages.
  const markIf = async (pauseMs: number): Promise<Mark | undefined> =>
    pauseMs === 0 ? undefined : mark(deps.pool)
  try {
    let pageStart = await markIf(start.pause_ms)
    for (;;) {
      if (opts.signal?.aborted) return await setBackfillState(deps.pool, id, 'stopped', null)
      const started = performance.now()
      const state = await withTransaction(deps.pool, async (client) => {
        // Locked for the page: a second runner of the same backfill waits, then sees the new position.
        const s = await claimBackfill(client, id)
        if (s?.state !== 'running') return s
        const page = await readSnapshots(client, table, {
          afterKey: s.last_key ?? undefined,
          where: s.where_sql ?? undefined,
          limit: s.page_size,
        })
        await enqueue(deps.queue, client, snapshotJobs(observers, page.events, false))
        return finishPage(client, id, page.events.length, page.lastKey, page.events.length < s.page_size)
      })
      if (state?.state !== 'running') return state ?? start
      opts.onProgress?.(state)
      const pageEnd = await markIf(state.pause_ms)
      const pause = throttle.pause(state.pause_ms, performance.now() - started)
      await delay(pause, undefined, opts.signal ? { signal: opts.signal } : {}).catch(() => {})
      const next = await markIf(state.pause_ms)
      if (pageStart && pageEnd && next) throttle.observe(pageStart, pageEnd, next)
      pageStart = next
    }
  } catch (err) {
    await setBackfillState(deps.pool, id, 'failed', coerceError(err).message).catch(() => {})
    throw err
  }
}
