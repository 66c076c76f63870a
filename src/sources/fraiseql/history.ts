import type { Queryable } from '../../db/pool.ts'
import type { History, HistoryWindow } from '../types.ts'
import { type Layout, readLayout } from './layout.ts'
import { type FraiseqlRow, toFraiseqlEntry } from './map.ts'

export interface FraiseqlHistoryOptions {
  name: string
  /** schema.table of the change log */
  table: string
  /** Entries with more image bytes were dead-lettered unread when dispatched; a replay skips them. */
  maxChangeBytes: number
}

// $1..$5 the window; a page adds $6, the key read last, and $7, the largest change read.
const windowSql = (l: Layout) =>
  `from ${l.table} c
   where ($1::timestamptz is null or ${l.createdAt} >= $1) and ($2::timestamptz is null or ${l.createdAt} < $2)
     and ($3::bigint is null or ${l.key} >= $3) and ($4::bigint is null or ${l.key} <= $4)
     and ($5::text is null or c.object_type = $5)`

/**
 * A window of a FraiseQL change log, read again in key order. The log is only read, as by the
 * source; malformed entries (dead-lettered when dispatched) are read and skipped.
 */
export function fraiseqlHistory(db: Queryable, opts: FraiseqlHistoryOptions, w: HistoryWindow): History {
  let layout: Layout | undefined
  const window = [w.since ?? null, w.until ?? null, w.fromSeq ?? null, w.toSeq ?? null, w.entity ?? null]
  return {
    source: opts.name,
    async page(afterKey, limit) {
      layout ??= await readLayout(db, opts.table)
      const l = layout
      const { rows } = await db.query<FraiseqlRow & { bytes: string }>(
        `select ${l.select(`${l.bytes} > $7`)}, ${l.bytes} as bytes ${windowSql(l)}
           and ($6::bigint is null or ${l.key} > $6)
         order by ${l.key} limit ${Math.max(1, Math.trunc(limit))}`,
        [...window, afterKey ?? null, opts.maxChangeBytes],
      )
      const events = rows.flatMap((r) => {
        if (Number(r.bytes) > opts.maxChangeBytes) return []
        const entry = toFraiseqlEntry(r, opts.name)
        return 'event' in entry ? [entry.event] : []
      })
      return { events, read: rows.length, lastKey: rows.at(-1)?.entry_key ?? afterKey }
    },
    async count() {
      layout ??= await readLayout(db, opts.table)
      const { rows } = await db.query<{ n: string }>(`select count(*) as n ${windowSql(layout)}`, window)
      return Number(rows[0]?.n ?? 0)
    },
    async close() {},
  }
}
