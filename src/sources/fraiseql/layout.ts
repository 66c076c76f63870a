import pg from 'pg'
import { splitEntity } from '../../capture/watch.ts'
import type { Queryable } from '../../db/pool.ts'
import { AppError, ErrorCode } from '../../errors/errors.ts'

/** How to read one FraiseQL change-log table: identifiers quoted once, columns it lacks read as null. */
export interface Layout {
  /** schema-qualified, quoted */
  table: string
  /** the entry key column, quoted */
  key: string
  /** created_at as timestamptz */
  createdAt: string
  /** the select list producing a FraiseqlRow; JSON columns read as null where `skipImages` holds */
  select(skipImages: string): string
  /** bytes of an entry's row images as stored */
  bytes: string
}

// The key is pk_entity_change_log in the documented contract; older tables only have seq.
const keyColumns = ['pk_entity_change_log', 'seq']
const required = ['object_type', 'object_id', 'modification_type', 'created_at']
const textColumns = [
  'id',
  'tenant_id',
  'fk_customer_org',
  'fk_contact',
  'object_type',
  'object_id',
  'modification_type',
]
const jsonColumns = ['object_data', 'object_data_before', 'extra_metadata', 'trace_context']

/** Reads the table's columns from information_schema; the table must exist and be readable. */
export async function readLayout(db: Queryable, table: string): Promise<Layout> {
  const [schema, name] = splitEntity(table)
  const { rows } = await db.query<{ column_name: string; data_type: string }>(
    `select column_name, data_type from information_schema.columns
      where table_schema = $1 and table_name = $2`,
    [schema, name],
  )
  const types = new Map(rows.map((r) => [r.column_name, r.data_type]))
  if (types.size === 0) {
    throw new AppError(ErrorCode.InvalidConfig, `change-log table ${table} does not exist or is not readable`)
  }
  const key = keyColumns.find((c) => types.has(c))
  const missing = [...required.filter((c) => !types.has(c)), ...(key ? [] : [keyColumns.join(' or ')])]
  if (missing.length > 0 || !key) {
    throw new AppError(
      ErrorCode.InvalidConfig,
      `change-log table ${table} lacks column(s) ${missing.join(', ')}`,
    )
  }
  const q = pg.escapeIdentifier
  const col = (c: string, expr: (quoted: string) => string) =>
    types.has(c) ? `${expr(`c.${q(c)}`)} as ${c}` : `null::text as ${c}`
  const createdAt =
    types.get('created_at') === 'timestamp with time zone' ? 'c.created_at' : 'c.created_at::timestamptz'
  const select = (skipImages: string) =>
    [
      `c.${q(key)}::text as entry_key`,
      ...textColumns.map((c) => col(c, (x) => `${x}::text`)),
      // A json/jsonb column prints as JSON; a text column is taken as the JSON text it should hold.
      ...jsonColumns.map((c) => col(c, (x) => `case when ${skipImages} then null else ${x}::text end`)),
      col('updated_fields', (x) => `to_jsonb(${x})::text`),
      `to_char(${createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as created_at`,
      'c.xmin::text as txid',
    ].join(', ')
  const images = ['object_data', 'object_data_before'].filter((c) => types.has(c))
  const bytes = ['0', ...images.map((c) => `coalesce(pg_column_size(c.${q(c)}), 0)`)].join(' + ')
  return { table: `${q(schema)}.${q(name)}`, key: `c.${q(key)}`, createdAt, select, bytes }
}
