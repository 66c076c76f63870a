import type mysqlTypes from 'mysql2/promise'
import { lazyModule } from '../../runtime/lazy.ts'

// Every worker and CLI loads the MySQL source; only one that reads a MySQL log needs the driver.
const mysql = lazyModule<typeof import('mysql2/promise')>('mysql2/promise')

export type MysqlPool = mysqlTypes.Pool

/** Identifier quoting for one name (dots stay part of it). */
export function quoteId(name: string): string {
  return mysql().escapeId(name, true)
}

/** String literal quoting. */
export function quoteLiteral(value: string): string {
  return mysql().escape(value)
}

/**
 * A small pool on a mysql:// or mariadb:// URL. Big integers arrive as strings and dates as text,
 * so nothing is rounded on the way to Postgres.
 */
export function createMysqlPool(url: string): MysqlPool {
  return mysql().createPool({
    uri: url.replace(/^mariadb:/, 'mysql:'),
    connectionLimit: 2,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    charset: 'utf8mb4',
    enableKeepAlive: true,
  })
}

/** `db.table` → [db, table]; a bare table is in the connection's database. */
export async function qualify(pool: MysqlPool, name: string): Promise<[string, string]> {
  const dot = name.indexOf('.')
  if (dot > 0) return [name.slice(0, dot), name.slice(dot + 1)]
  const [rows] = await pool.query<mysqlTypes.RowDataPacket[]>('select database() as db')
  return [String(rows[0]?.db ?? ''), name]
}
