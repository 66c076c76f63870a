import { setTimeout as delay } from 'node:timers/promises'
import type mysql from 'mysql2/promise'
import type { Queryable } from '../../db/pool.ts'
import { coerceError } from '../../errors/errors.ts'
import { ledgerBatch } from '../batch.ts'
import { missingKeys, pruneLedger, readStoredFloor, tryLockSource } from '../ledger.ts'
import type { ChangeSource, SourceBacklog } from '../types.ts'
import { createMysqlPool, qualify, quoteId } from './connect.ts'
import { type MysqlLog, type MysqlRead, mysqlTime, readMysql } from './read.ts'

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

const pruneBatch = 5000
// A probe right after startup waits this long for the dispatcher's first read of MySQL.
const firstReadWaitMs = 5000

/** Deletes rows a full window below the floor and past retention: dispatched, and never counted again. */
async function pruneLog(log: MysqlLog, db: Queryable, windowMs: number, retentionDays: number) {
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

/** The backlog as the dispatcher last measured it, aged to now; or why it could not. */
function backlogCache() {
  let measured: { read: MysqlRead; at: number } | Error | undefined
  let first: () => void = () => {}
  const firstRead = new Promise<void>((resolve) => {
    first = resolve
  })
  return {
    set(value: { read: MysqlRead; at: number } | Error) {
      measured = value
      first()
    },
    async get(): Promise<SourceBacklog> {
      if (!measured) await Promise.race([firstRead, delay(firstReadWaitMs)])
      if (!measured) throw new Error('not read yet: the dispatcher has not reached MySQL')
      if (measured instanceof Error) throw measured
      const { read, at } = measured
      const age = read.oldestAt
        ? Math.max(0, (Date.parse(read.readAt) - Date.parse(read.oldestAt) + Date.now() - at) / 1000)
        : null
      return { backlog: read.backlog, oldestAgeSeconds: age }
    },
  }
}

/**
 * Polls a MariaDB/MySQL change-log table (docs/sources.md). The rows are committed out of order
 * (auto_increment is allocated before COMMIT), so progress is a ledger in Postgres over a commit
 * window, written in the same transaction as the jobs; MySQL itself is only read and pruned.
 * MySQL is read before the dispatch transaction, in keyset pages, and the backlog that read
 * measures is what /metrics and /readyz report: probes never reach MySQL.
 */
export function mysqlSource(opts: MysqlSourceOptions): ChangeSource {
  const { name, commitWindowMs: windowMs } = opts
  const pool = createMysqlPool(opts.url)
  let log: MysqlLog | undefined
  const open = async () => {
    log ??= { name, pool, table: (await qualify(pool, opts.logTable)).map(quoteId).join('.') }
    return log
  }
  const backlog = backlogCache()
  let pending: MysqlRead | undefined
  return {
    name,
    kind: 'mysql',
    wake: 'poll',
    pollMs: opts.pollMs,
    async read(db, limits) {
      pending = undefined
      try {
        pending = await readMysql(await open(), db, { windowMs, limits })
        backlog.set({ read: pending, at: Date.now() })
      } catch (err) {
        backlog.set(coerceError(err))
        throw err
      }
    },
    async claim(client) {
      const read = pending
      pending = undefined
      if (!read || !(await tryLockSource(client, name))) return undefined
      // Another worker may have dispatched some of them since they were read.
      const keys = read.entries.map((e) => e.key)
      const missing = new Set((await missingKeys(client, name, keys, keys.length)).keys)
      const entries = read.entries.filter((e) => missing.has(e.key))
      const batch = ledgerBatch(name, entries, {
        readAt: read.readAt,
        windowMs,
        complete: read.complete,
        lastRead: read.lastRead,
      })
      return {
        ...batch,
        async record(c) {
          await batch.record(c)
          // What the pass leaves behind, until the next read measures again.
          const left = {
            ...read,
            backlog: Math.max(0, read.backlog - entries.length),
            oldestAt: read.oldestLeft,
          }
          backlog.set({ read: left, at: Date.now() })
        },
      }
    },
    backlog: () => backlog.get(),
    async tidy(db) {
      await pruneLedger(db, name, windowMs)
      await pruneLog(await open(), db, windowMs, opts.retentionDays)
    },
    close: () => pool.end(),
  }
}
