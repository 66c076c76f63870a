import type mysql from 'mysql2/promise'
import type { Queryable } from '../../db/pool.ts'
import { ErrorCode } from '../../errors/errors.ts'
import { countLedger, missingKeys, readFloor } from '../ledger.ts'
import type { ClaimLimits, SourceEntry } from '../types.ts'
import type { MysqlPool } from './connect.ts'
import { type MysqlRow, toMysqlEntry } from './map.ts'

/** A MySQL change-log table: the source's name, its pool, and the table, quoted. */
export interface MysqlLog {
  name: string
  pool: MysqlPool
  table: string
}

/** What one read found: the entries the next claim takes, and the backlog behind them. */
export interface MysqlRead {
  readAt: string
  entries: SourceEntry[]
  /** Every entry after the floor that the ledger lacked was read. */
  complete: boolean
  /** created_at of the last entry read, where the floor stops when the read was not complete. */
  lastRead: string | undefined
  backlog: number
  /** created_at of the oldest entry not yet dispatched. */
  oldestAt: string | null
  /** created_at of the oldest entry this read leaves behind. */
  oldestLeft: string | null
}

// Ids are compared with the ledger a page at a time, so a burst never sits in memory whole.
const pageRows = 1000
const isoFormat = `'%Y-%m-%dT%H:%i:%s.%fZ'`
/** The columns of a change-log row as toMysqlEntry reads them. */
export const columns = `id, event, entity, entity_id, before_image, after_image, changed, tenant_id, actor_id,
  date_format(created_at, ${isoFormat}) as created_at`
const unreadColumns = `id, event, entity, entity_id, null as before_image, null as after_image, null as changed,
  tenant_id, actor_id, date_format(created_at, ${isoFormat}) as created_at`
export const imageBytes = 'coalesce(length(before_image), 0) + coalesce(length(after_image), 0)'

/** `…T…Z` ISO text → the DATETIME(6) literal MySQL compares with created_at (kept in UTC). */
export function mysqlTime(iso: string): string {
  return iso.replace('T', ' ').replace('Z', '')
}

async function select<T>(log: MysqlLog, sql: string, values: unknown[] = []): Promise<T[]> {
  return (await log.pool.query<mysql.RowDataPacket[]>(sql, values))[0] as T[]
}

async function readNow(log: MysqlLog): Promise<string> {
  const [row] = await select<{ now: string }>(
    log,
    `select date_format(utc_timestamp(6), ${isoFormat}) as now`,
  )
  return row!.now
}

interface Key {
  id: string
  created_at: string
}

/** Entries after the floor that the ledger lacks, oldest first, at most `limit`, in keyset pages. */
async function missingAfter(log: MysqlLog, db: Queryable, floor: string, limit: number) {
  const keys: Key[] = []
  let last: Key | undefined
  for (;;) {
    const after = last
      ? [
          'and (created_at > ? or (created_at = ? and id > ?))',
          mysqlTime(last.created_at),
          mysqlTime(last.created_at),
          last.id,
        ]
      : ['']
    const page = await select<Key>(
      log,
      `select id, date_format(created_at, ${isoFormat}) as created_at from ${log.table}
        where created_at > ? ${after[0]} order by created_at, id limit ${pageRows}`,
      [mysqlTime(floor), ...after.slice(1)],
    )
    const missing = new Set(
      (
        await missingKeys(
          db,
          log.name,
          page.map((r) => r.id),
          limit - keys.length,
        )
      ).keys,
    )
    keys.push(...page.filter((r) => missing.has(r.id)))
    if (keys.length >= limit) return { keys, complete: false }
    if (page.length < pageRows) return { keys, complete: true }
    last = page.at(-1)
  }
}

/** The leading keys whose images fit `limits.bytes` (at least one), and those above `changeBytes`. */
async function withinBytes(log: MysqlLog, keys: readonly Key[], limits: ClaimLimits) {
  if (keys.length === 0) return { taken: [], oversized: new Map<string, number>() }
  const sizes = await select<{ id: string; bytes: string }>(
    log,
    `select id, ${imageBytes} as bytes from ${log.table} where id in (?)`,
    [keys.map((k) => k.id)],
  )
  const bytesOf = new Map(sizes.map((s) => [String(s.id), Number(s.bytes)]))
  const taken: Key[] = []
  const oversized = new Map<string, number>()
  let total = 0
  for (const k of keys) {
    if (total >= limits.bytes) break
    const bytes = bytesOf.get(k.id) ?? 0
    taken.push(k)
    if (bytes > limits.changeBytes) oversized.set(k.id, bytes)
    else total += bytes
  }
  return { taken, oversized }
}

async function fetchRows(log: MysqlLog, taken: readonly Key[], oversized: ReadonlyMap<string, number>) {
  const read = taken.filter((k) => !oversized.has(k.id)).map((k) => k.id)
  const rows = [
    ...(read.length > 0
      ? await select<MysqlRow>(log, `select ${columns} from ${log.table} where id in (?)`, [read])
      : []),
    ...(oversized.size > 0
      ? await select<MysqlRow>(log, `select ${unreadColumns} from ${log.table} where id in (?)`, [
          [...oversized.keys()],
        ])
      : []),
  ]
  const order = new Map(taken.map((k, i) => [k.id, i]))
  return rows.sort((a, b) => (order.get(String(a.id)) ?? 0) - (order.get(String(b.id)) ?? 0))
}

function unreadEntry(row: MysqlRow, bytes: number, max: number): SourceEntry {
  const error = `change-log entry ${row.id} has ${bytes} bytes of row images, more than OBSERVERS_MAX_CHANGE_BYTES (${max}); it was not read`
  const malformed = {
    key: row.id,
    code: ErrorCode.DatabaseError,
    error,
    entity: row.entity,
    entityId: row.entity_id,
  }
  return { key: row.id, createdAt: row.created_at, malformed: { ...malformed, entry: { ...row } } }
}

/**
 * Reads what the next claim of this source takes, outside any Postgres transaction. Counting
 * both sides first keeps an idle poll to two counts, and measures the backlog on the way.
 */
export async function readMysql(
  log: MysqlLog,
  db: Queryable,
  opts: { windowMs: number; limits: ClaimLimits },
): Promise<MysqlRead> {
  const readAt = await readNow(log)
  const floor = await readFloor(db, log.name, readAt, opts.windowMs)
  const [seen] = await select<{ n: string }>(
    log,
    `select count(*) as n from ${log.table} where created_at > ?`,
    [mysqlTime(floor)],
  )
  const backlog = Math.max(0, Number(seen?.n ?? 0) - (await countLedger(db, log.name, floor)))
  const none = {
    readAt,
    entries: [],
    complete: true,
    lastRead: undefined,
    backlog: 0,
    oldestAt: null,
    oldestLeft: null,
  }
  if (backlog === 0) return none
  const { keys, complete } = await missingAfter(log, db, floor, opts.limits.rows)
  const { taken, oversized } = await withinBytes(log, keys, opts.limits)
  const rows = await fetchRows(log, taken, oversized)
  const entries = rows.map((r) => {
    const bytes = oversized.get(String(r.id))
    return bytes === undefined ? toMysqlEntry(r, log.name) : unreadEntry(r, bytes, opts.limits.changeBytes)
  })
  const lastRead = taken.at(-1)?.created_at
  const all = complete && taken.length === keys.length
  return {
    readAt,
    entries,
    complete: all,
    lastRead,
    backlog,
    oldestAt: keys[0]?.created_at ?? null,
    oldestLeft: keys[taken.length]?.created_at ?? (all ? null : (lastRead ?? null)),
  }
}
