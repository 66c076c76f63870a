import type { Queryable } from '../pool.ts'

export const BackfillStates = ['running', 'stopped', 'done', 'failed'] as const
export type BackfillStateName = (typeof BackfillStates)[number]

/** A row of observers.backfills, as the API shows it. */
export interface BackfillState {
  id: number
  entity: string
  where_sql: string | null
  observers: string[]
  state: BackfillStateName
  /** Primary key of the last row read, JSON array text. */
  last_key: string | null
  rows_done: number
  rows_total: number | null
  page_size: number
  pause_ms: number
  error: string | null
  created_at: string
  updated_at: string
  finished_at: string | null
}

const columns = `id, entity, where_sql, observers, state, last_key::text as last_key, rows_done, rows_total,
  page_size, pause_ms, error, created_at, updated_at, finished_at`

type Raw = Omit<
  BackfillState,
  'id' | 'rows_done' | 'rows_total' | 'created_at' | 'updated_at' | 'finished_at'
> & {
  id: string
  rows_done: string
  rows_total: string | null
  created_at: Date
  updated_at: Date
  finished_at: Date | null
}

function toState(r: Raw): BackfillState {
  return {
    ...r,
    id: Number(r.id),
    rows_done: Number(r.rows_done),
    rows_total: r.rows_total === null ? null : Number(r.rows_total),
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
    finished_at: r.finished_at?.toISOString() ?? null,
  }
}

export async function insertBackfill(
  db: Queryable,
  b: {
    entity: string
    where: string | undefined
    observers: string[]
    total: number
    pageSize: number
    pauseMs: number
  },
): Promise<BackfillState> {
  const { rows } = await db.query<Raw>(
    `insert into observers.backfills (entity, where_sql, observers, rows_total, page_size, pause_ms)
     values ($1, $2, $3, $4, $5, $6) returning ${columns}`,
    [b.entity, b.where ?? null, b.observers, b.total, b.pageSize, b.pauseMs],
  )
  return toState(rows[0] as Raw)
}

export async function getBackfill(db: Queryable, id: number): Promise<BackfillState | undefined> {
  const { rows } = await db.query<Raw>(`select ${columns} from observers.backfills where id = $1`, [id])
  return rows[0] && toState(rows[0])
}

export async function listBackfills(db: Queryable, limit = 100): Promise<BackfillState[]> {
  const { rows } = await db.query<Raw>(
    `select ${columns} from observers.backfills order by id desc limit $1`,
    [limit],
  )
  return rows.map(toState)
}

/** Locks the backfill's row for the caller's transaction. */
export async function claimBackfill(db: Queryable, id: number): Promise<BackfillState | undefined> {
  const { rows } = await db.query<Raw>(
    `select ${columns} from observers.backfills where id = $1 for update`,
    [id],
  )
  return rows[0] && toState(rows[0])
}

/** Moves the position past a page; `last` marks the backfill done. */
export async function finishPage(
  db: Queryable,
  id: number,
  rows: number,
  lastKey: string | undefined,
  last: boolean,
): Promise<BackfillState> {
  const { rows: out } = await db.query<Raw>(
    `update observers.backfills
        set rows_done = rows_done + $2, last_key = coalesce($3::jsonb, last_key), updated_at = now(),
            state = case when $4 then 'done' else state end,
            finished_at = case when $4 then now() end
      where id = $1 returning ${columns}`,
    [id, rows, lastKey ?? null, last],
  )
  return toState(out[0] as Raw)
}

/** Sets the state; a finished backfill stays done. */
export async function setBackfillState(
  db: Queryable,
  id: number,
  state: BackfillStateName,
  error: string | null,
): Promise<BackfillState> {
  const { rows } = await db.query<Raw>(
    `update observers.backfills
        set state = case when state = 'done' then state else $2 end, error = $3, updated_at = now()
      where id = $1 returning ${columns}`,
    [id, state, error],
  )
  return toState(rows[0] as Raw)
}
