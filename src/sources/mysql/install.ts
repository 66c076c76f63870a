import { createHash } from 'node:crypto'
import type mysql from 'mysql2/promise'
import { AppError, ErrorCode } from '../../errors/errors.ts'
import { type MysqlPool, qualify, quoteId, quoteLiteral } from './connect.ts'

/** The change-log table the triggers write; the worker reads it and prunes what it dispatched. */
export async function ensureLogTable(pool: MysqlPool, logTable: string): Promise<string> {
  const [db, table] = await qualify(pool, logTable)
  const name = `${quoteId(db)}.${quoteId(table)}`
  await pool.query(`create table if not exists ${name} (
    id bigint unsigned not null auto_increment primary key,
    event varchar(6) not null,
    entity varchar(200) not null,
    entity_id varchar(1024) not null,
    before_image longtext null,
    after_image longtext null,
    changed longtext null,
    tenant_id varchar(255) null,
    actor_id varchar(255) null,
    created_at datetime(6) not null,
    key ${quoteId(`${table}_created_at`)} (created_at, id)
  ) engine = InnoDB default charset = utf8mb4`)
  return name
}

interface Column {
  name: string
  type: string
}

async function readColumns(pool: MysqlPool, db: string, table: string) {
  const [cols] = await pool.query<mysql.RowDataPacket[]>(
    `select column_name as name, data_type as type from information_schema.columns
      where table_schema = ? and table_name = ? order by ordinal_position`,
    [db, table],
  )
  const [keys] = await pool.query<mysql.RowDataPacket[]>(
    `select column_name as name from information_schema.key_column_usage
      where table_schema = ? and table_name = ? and constraint_name = 'PRIMARY' order by ordinal_position`,
    [db, table],
  )
  return { columns: cols as Column[], keys: keys.map((k) => String(k.name)) }
}

// JSON has no bytes or bits: binary columns travel as base64, bit columns as numbers.
function columnValue(row: 'NEW' | 'OLD', c: Column): string {
  const ref = `${row}.${quoteId(c.name)}`
  if (/blob|binary/i.test(c.type)) return `to_base64(${ref})`
  if (/^bit$/i.test(c.type)) return `cast(${ref} as unsigned)`
  return ref
}

function image(row: 'NEW' | 'OLD', columns: readonly Column[]): string {
  return `json_object(${columns.map((c) => `${quoteLiteral(c.name)}, ${columnValue(row, c)}`).join(', ')})`
}

// One key column: its text; several: a JSON array, as the Postgres capture does.
function keyOf(row: 'NEW' | 'OLD', keys: readonly string[]): string {
  const refs = keys.map((k) => `${row}.${quoteId(k)}`)
  return refs.length === 1 ? `cast(${refs[0]} as char)` : `json_array(${refs.join(', ')})`
}

function changed(columns: readonly Column[]): string {
  const each = columns.map((c) => {
    const ref = quoteId(c.name)
    return `if(NEW.${ref} <=> OLD.${ref}, null, ${quoteLiteral(JSON.stringify(c.name))})`
  })
  return `concat('[', concat_ws(',', ${each.join(', ')}), ']')`
}

/** Trigger names are unique per database and at most 64 characters. */
export function triggerNames(table: string): { insert: string; update: string; delete: string } {
  const stem = `observers_${table}`.length <= 60 ? `observers_${table}` : `observers_${hash(table)}`
  return { insert: `${stem}_ai`, update: `${stem}_au`, delete: `${stem}_ad` }
}

function hash(s: string): string {
  return createHash('sha1').update(s).digest('hex').slice(0, 16)
}

async function isMariaDb(pool: MysqlPool): Promise<boolean> {
  const [rows] = await pool.query<mysql.RowDataPacket[]>('select version() as v')
  return /mariadb/i.test(String(rows[0]?.v ?? ''))
}

async function resolve(pool: MysqlPool, name: string) {
  const [db, table] = await qualify(pool, name)
  if (!db) throw new AppError(ErrorCode.InvalidConfig, `name the table as database.table (got "${name}")`)
  return { db, table, target: `${quoteId(db)}.${quoteId(table)}` }
}

export interface MysqlWatchOptions {
  /** database.table to capture */
  table: string
  /** column whose value becomes tenant_id */
  tenantColumn?: string | undefined
  /** the change-log table the triggers write */
  logTable: string
}

/**
 * Installs AFTER INSERT/UPDATE/DELETE triggers writing each row change, before and after as JSON
 * over the table's current columns, into the change-log table. Run it again after the table's
 * columns change. Returns the entity name observers use (`database.table`).
 */
export async function watchMysqlTable(pool: MysqlPool, opts: MysqlWatchOptions): Promise<string> {
  const { db, table, target } = await resolve(pool, opts.table)
  const { columns, keys } = await readColumns(pool, db, table)
  const entity = `${db}.${table}`
  if (columns.length === 0) throw new AppError(ErrorCode.InvalidConfig, `table ${entity} does not exist`)
  if (keys.length === 0) {
    throw new AppError(
      ErrorCode.InvalidConfig,
      `table ${entity} has no primary key; it becomes the event's entity_id`,
    )
  }
  const tenant = opts.tenantColumn
  if (tenant && !columns.some((c) => c.name === tenant)) {
    throw new AppError(ErrorCode.InvalidConfig, `table ${entity} has no column ${tenant}`)
  }
  const log = await ensureLogTable(pool, opts.logTable)
  const write = (event: string, row: 'NEW' | 'OLD', before: string, after: string, changes: string) =>
    `insert into ${log} (event, entity, entity_id, before_image, after_image, changed, tenant_id, actor_id, created_at)
     values (${quoteLiteral(event)}, ${quoteLiteral(entity)}, ${keyOf(row, keys)}, ${before}, ${after}, ${changes},
             ${tenant ? `cast(${row}.${quoteId(tenant)} as char)` : 'null'}, nullif(@observers_actor, ''), utc_timestamp(6))`
  const names = triggerNames(table)
  const triggers = [
    [names.insert, 'insert', write('INSERT', 'NEW', 'null', image('NEW', columns), 'null')],
    [
      names.update,
      'update',
      write('UPDATE', 'NEW', image('OLD', columns), image('NEW', columns), changed(columns)),
    ],
    [names.delete, 'delete', write('DELETE', 'OLD', image('OLD', columns), 'null', 'null')],
  ] as const
  // MariaDB replaces a trigger in one statement; MySQL has a moment without one.
  const replace = await isMariaDb(pool)
  for (const [name, event, body] of triggers) {
    const trigger = `${quoteId(db)}.${quoteId(name)}`
    if (!replace) await pool.query(`drop trigger if exists ${trigger}`)
    await pool.query(
      `create ${replace ? 'or replace ' : ''}trigger ${trigger} after ${event} on ${target} for each row ${body}`,
    )
  }
  return entity
}

/** Drops the triggers; the change-log rows already written are still dispatched. */
export async function unwatchMysqlTable(pool: MysqlPool, name: string): Promise<string> {
  const { db, table } = await resolve(pool, name)
  for (const trigger of Object.values(triggerNames(table))) {
    await pool.query(`drop trigger if exists ${quoteId(db)}.${quoteId(trigger)}`)
  }
  return `${db}.${table}`
}
