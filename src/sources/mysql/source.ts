import type mysql from 'mysql2/promise'
import type { Queryable } from '../../db/pool.ts'
import { ledgerBatch } from '../batch.ts'
import {
  countLedger,
  missingKeys,
  pruneLedger,
  readFloor,
  readStoredFloor,
  tryLockSource,
} from '../ledger.ts'
import type { ChangeSource } from '../types.ts'
import { createMysqlPool, type MysqlPool, qualify, quoteId } from './connect.ts'
import { type MysqlRow, toMysqlEntry } from './map.ts'

export interface MysqlSourceOptions {
  name: string
  url: string
  /** the change-log table written by the triggers of `observers watch --source` */
  logTable: string
  pollMs: number
  /** Longest a writing transaction may take from its change to COMMIT. */
  commitWindowMs: number
  /** Dispatched change-log rows older than this many days are deleted. */
  retentionDays: number
}

const isoFormat = `'%Y-%m-%dT%H:%i:%s.%fZ'`
const columns = `id, event, entity, entity_id, before_image, after_image, changed, tenant_id, actor_id,
  date_format(created_at, ${isoFormat}) as created_at`
const pruneBatch = 5000

/** `…T…Z` ISO text → the DATETIME(6) literal MySQL compares with created_at (kept in UTC). */
function mysqlTime(iso: string): string {
  return iso.replace('T', ' ').replace('Z', '')
}

interface Log {
  name: string
  pool: MysqlPool
  /** the change-log table, quoted */
  table: string
}

async function select<T>(log: Log, sql: string, values: unknown[] = []): Promise<T[]> {
  return (await log.pool.query<mysql.RowDataPacket[]>(sql, values))[0] as T[]
}

async function readNow(log: Log): Promise<string> {
  const [row] = await select<{ now: string }>(
    log,
    `select date_format(utc_timestamp(6), ${isoFormat}) as now`,
  )
  return row!.now
}

/**
 * Rows created after the floor that the ledger lacks, oldest first, at most `limit`. Counting
 * both sides first keeps an idle poll to two counts; only then are the window's ids compared.
 */
async function pendingRows(log: Log, db: Queryable, floor: string, limit: number) {
  const after = [mysqlTime(floor)]
  const [seen] = await select<{ n: string }>(
    log,
    `select count(*) as n from ${log.table} where created_at > ?`,
    after,
  )
  if (Number(seen?.n ?? 0) <= (await countLedger(db, log.name, floor))) return { rows: [], total: 0 }
  const ids = await select<{ id: string }>(
    log,
    `select id from ${log.table} where created_at > ? order by created_at, id`,
    after,
  )
  const missing = await missingKeys(
    db,
    log.name,
    ids.map((r) => r.id),
    limit,
  )
  if (missing.keys.length === 0) return { rows: [], total: 0 }
  const rows = await select<MysqlRow>(log, `select ${columns} from ${log.table} where id in (?)`, [
    missing.keys,
  ])
  const order = new Map(missing.keys.map((k, i) => [k, i]))
  rows.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0))
  return { rows, total: missing.total }
}

/** Deletes rows a full window below the floor and past retention: dispatched, and never counted again. */
async function pruneLog(log: Log, db: Queryable, windowMs: number, retentionDays: number) {
  const floor = await readStoredFloor(db, log.name)
  if (!floor) return
  const cutoff = Math.min(Date.parse(floor) - windowMs, Date.now() - retentionDays * 86_400_000)
  const before = mysqlTime(new Date(cutoff).toISOString())
  for (;;) {
    const [result] = await log.pool.query<mysql.ResultSetHeader>(
      `delete from ${log.table} where created_at < ? order by created_at limit ${pruneBatch}`,
      [before],
    )
    if (result.affectedRows < pruneBatch) return
  }
}

/**
 * Polls a MariaDB/MySQL change-log table (docs/sources.md). The rows are committed out of order
 * (auto_increment is allocated before COMMIT), so progress is a ledger in Postgres over a commit
 * window, written in the same transaction as the jobs; MySQL itself is only read and pruned.
 */
export function mysqlSource(opts: MysqlSourceOptions): ChangeSource {
  const { name, commitWindowMs: windowMs } = opts
  const pool = createMysqlPool(opts.url)
  let log: Log | undefined
  const open = async () => {
    log ??= { name, pool, table: (await qualify(pool, opts.logTable)).map(quoteId).join('.') }
    return log
  }
  return {
    name,
    kind: 'mysql',
    wake: 'poll',
    pollMs: opts.pollMs,
    async claim(client, { rows: limit }) {
      if (!(await tryLockSource(client, name))) return undefined
      const l = await open()
      const readAt = await readNow(l)
      const { rows } = await pendingRows(l, client, await readFloor(client, name, readAt, windowMs), limit)
      const entries = rows.map((r) => toMysqlEntry(r, name))
      return ledgerBatch(name, entries, { readAt, windowMs, limit })
    },
    async backlog(db) {
      const l = await open()
      const readAt = await readNow(l)
      const { rows, total } = await pendingRows(l, db, await readFloor(db, name, readAt, windowMs), 1)
      const oldest = rows[0]?.created_at
      const age = oldest ? Math.max(0, (Date.parse(readAt) - Date.parse(oldest)) / 1000) : null
      return { backlog: total, oldestAgeSeconds: age }
    },
    async tidy(db) {
      await pruneLedger(db, name, windowMs)
      await pruneLog(await open(), db, windowMs, opts.retentionDays)
    },
    close: () => pool.end(),
  }
}
