import type mysql from 'mysql2/promise'
import type { History, HistoryWindow } from '../types.ts'
import { createMysqlPool, qualify, quoteId } from './connect.ts'
import { type MysqlRow, toMysqlEntry } from './map.ts'
import { columns, imageBytes, mysqlTime } from './read.ts'

export interface MysqlHistoryOptions {
  name: string
  url: string
  /** the change-log table the triggers write */
  table: string
  /** Entries with more image bytes were dead-lettered unread when dispatched; a replay skips them. */
  maxChangeBytes: number
}

function windowSql(w: HistoryWindow): { sql: string; values: unknown[] } {
  const parts: Array<[string, unknown]> = []
  if (w.since) parts.push(['created_at >= ?', mysqlTime(w.since.toISOString())])
  if (w.until) parts.push(['created_at < ?', mysqlTime(w.until.toISOString())])
  if (w.fromSeq !== undefined) parts.push(['id >= ?', w.fromSeq])
  if (w.toSeq !== undefined) parts.push(['id <= ?', w.toSeq])
  if (w.entity !== undefined) parts.push(['entity = ?', w.entity])
  return { sql: ['true', ...parts.map((p) => p[0])].join(' and '), values: parts.map((p) => p[1]) }
}

/**
 * A window of a MySQL change-log table, read again in id order: rows stay there until the worker
 * prunes them (dispatched, a commit window below the floor, past OBSERVERS_RETENTION_DAYS).
 */
export function mysqlHistory(opts: MysqlHistoryOptions, w: HistoryWindow): History {
  const pool = createMysqlPool(opts.url)
  let table: string | undefined
  const open = async () => {
    table ??= (await qualify(pool, opts.table)).map(quoteId).join('.')
    return table
  }
  const where = windowSql(w)
  return {
    source: opts.name,
    async page(afterKey, limit) {
      const [rows] = await pool.query<mysql.RowDataPacket[]>(
        `select ${columns}, ${imageBytes} as bytes from ${await open()}
          where ${where.sql} and id > ? order by id limit ${Math.max(1, Math.trunc(limit))}`,
        [...where.values, afterKey ?? 0],
      )
      const read = rows as Array<MysqlRow & { bytes: string }>
      const events = read.flatMap((r) => {
        if (Number(r.bytes) > opts.maxChangeBytes) return []
        const entry = toMysqlEntry({ ...r, id: String(r.id) }, opts.name)
        return 'event' in entry ? [entry.event] : []
      })
      return { events, read: read.length, lastKey: read.length > 0 ? String(read.at(-1)?.id) : afterKey }
    },
    async count() {
      const [rows] = await pool.query<mysql.RowDataPacket[]>(
        `select count(*) as n from ${await open()} where ${where.sql}`,
        where.values,
      )
      return Number(rows[0]?.n ?? 0)
    },
    close: () => pool.end(),
  }
}
