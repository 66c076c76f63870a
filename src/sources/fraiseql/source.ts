import type { Queryable } from '../../db/pool.ts'
import { ErrorCode } from '../../errors/errors.ts'
import { ledgerBatch } from '../batch.ts'
import { isoFormat, pruneLedger, readFloor, tryLockSource } from '../ledger.ts'
import type { ChangeSource, SourceEntry } from '../types.ts'
import { type Layout, readLayout } from './layout.ts'
import { type FraiseqlRow, toFraiseqlEntry } from './map.ts'

export interface FraiseqlSourceOptions {
  name: string
  /** schema.table of the change log, in the worker's own database */
  table: string
  pollMs: number
  /** Longest a writing transaction may take from created_at to COMMIT. */
  commitWindowMs: number
}

// Entries created after the floor and not yet in our ledger; the table itself is only read.
// `offset 0` keeps the probe a per-row primary-key lookup: as an anti-join, a ledger without
// statistics yet can get a nested loop over all of it for every entry.
const pendingSql = (l: Layout) =>
  `from ${l.table} c
   where ${l.createdAt} > $2::timestamptz
     and not exists (select 1 from observers.source_ledger g
                      where g.source = $1 and g.entry_key = ${l.key}::text offset 0)`

/**
 * The oldest pending entries within the limits: sizes (as stored) are read first, the images only
 * of the entries taken, and never of one above `changeBytes`, which is dead-lettered unread.
 */
const claimSql = (l: Layout) =>
  `with candidates as (
     select ${l.key} as k, ${l.createdAt} as at, ${l.bytes} as bytes ${pendingSql(l)}
      order by ${l.createdAt}, ${l.key} limit $3
   ), taken as (
     select k, at, bytes from (
       select k, at, bytes, coalesce(sum(case when bytes > $5 then 0 else bytes end)
                over (order by at, k rows between unbounded preceding and 1 preceding), 0) as preceding
         from candidates) s
      where preceding < $4
   )
   select ${l.select('t.bytes > $5')}, t.bytes, (select count(*) from candidates)::int as candidates
     from taken t join ${l.table} c on ${l.key} = t.k
    order by t.at, t.k`

type ClaimedRow = FraiseqlRow & { bytes: string; candidates: number }

function unreadEntry(row: ClaimedRow, max: number): SourceEntry {
  const error = `change-log entry ${row.entry_key} has ${row.bytes} bytes of row images, more than OBSERVERS_MAX_CHANGE_BYTES (${max}); it was not read`
  const { bytes: _bytes, candidates: _candidates, ...entry } = row
  const malformed = { key: row.entry_key, code: ErrorCode.DatabaseError, error, entry }
  return {
    key: row.entry_key,
    createdAt: row.created_at,
    malformed: { ...malformed, entity: row.object_type, entityId: row.object_id },
  }
}

async function readNow(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ now: string }>(
    `select to_char(now() at time zone 'UTC', ${isoFormat}) as now`,
  )
  return rows[0]!.now
}

/**
 * Reads an existing FraiseQL `core.tb_entity_change_log` (docs/sources.md) without writing to it.
 * Progress lives in observers.source_ledger, written in the dispatch transaction.
 */
export function fraiseqlSource(opts: FraiseqlSourceOptions): ChangeSource {
  const { name, commitWindowMs: windowMs } = opts
  let layout: Layout | undefined
  const read = async (db: Queryable) => {
    layout ??= await readLayout(db, opts.table)
    const readAt = await readNow(db)
    return { layout, readAt, floor: await readFloor(db, name, readAt, windowMs) }
  }
  return {
    name,
    kind: 'fraiseql',
    wake: 'poll',
    pollMs: opts.pollMs,
    async claim(client, limits) {
      if (!(await tryLockSource(client, name))) return undefined
      const { layout: l, readAt, floor } = await read(client)
      const { rows } = await client
        .query<ClaimedRow>(claimSql(l), [name, floor, limits.rows, limits.bytes, limits.changeBytes])
        .catch((err: unknown) => {
          // The table may have been altered since its columns were read: read them again next time.
          layout = undefined
          throw err
        })
      const entries = rows.map((r) =>
        Number(r.bytes) > limits.changeBytes ? unreadEntry(r, limits.changeBytes) : toFraiseqlEntry(r, name),
      )
      const candidates = rows[0]?.candidates ?? 0
      const complete = candidates < limits.rows && rows.length === candidates
      return ledgerBatch(name, entries, { readAt, windowMs, complete })
    },
    async backlog(db) {
      const { layout: l, floor } = await read(db)
      const { rows } = await db.query<{ n: string; age: number | null }>(
        `select count(*) as n, extract(epoch from now() - min(${l.createdAt}))::float8 as age ${pendingSql(l)}`,
        [name, floor],
      )
      return { backlog: Number(rows[0]?.n ?? 0), oldestAgeSeconds: rows[0]?.age ?? null }
    },
    async tidy(db) {
      await pruneLedger(db, name, windowMs)
    },
    async close() {},
  }
}
