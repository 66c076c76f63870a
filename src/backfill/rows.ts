import type { Queryable } from '../db/pool.ts'
import { ConfigError, ErrorCode } from '../errors/errors.ts'
import type { Row } from '../event/event.ts'
import { parseExact, stringifyExact } from '../json/exact.ts'
import { formatEntity, parseEntity } from '../observers/entity.ts'
import type { SourceEvent } from '../sources/types.ts'

/** A table read for snapshots: its name as SQL, its primary key and its tenant column. */
export interface SnapshotTable {
  entity: string
  /** Schema-qualified and quoted, ready to splice into SQL. */
  sqlName: string
  keys: ReadonlyArray<{ name: string; type: string }>
  tenantColumn: string | undefined
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`

/** Looks the table up by entity name; OB001 when it does not exist or has no primary key. */
export async function describeTable(db: Queryable, text: string): Promise<SnapshotTable> {
  let schema: string
  let table: string
  try {
    ;[schema, table] = parseEntity(text)
  } catch (err) {
    throw new ConfigError(ErrorCode.InvalidConfig, `"${text}" is not a table name`, { cause: err })
  }
  const entity = formatEntity(schema, table)
  const { rows } = await db.query<{ name: string; type: string; tenant: string | null }>(
    `select a.attname::text as name, format_type(a.atttypid, a.atttypmod) as type, w.tenant_column as tenant
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       join pg_index i on i.indrelid = c.oid and i.indisprimary
       cross join lateral unnest(i.indkey::int2[]) with ordinality as k(attnum, ord)
       join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
       left join observers.watched w on w.relid = c.oid
      where n.nspname = $1 and c.relname = $2
      order by k.ord`,
    [schema, table],
  )
  if (rows.length === 0) {
    throw new ConfigError(ErrorCode.InvalidConfig, `table ${entity} does not exist or has no primary key`)
  }
  return {
    entity,
    sqlName: `${quoteIdent(schema)}.${quoteIdent(table)}`,
    keys: rows.map((r) => ({ name: r.name, type: r.type })),
    tenantColumn: rows[0]?.tenant ?? undefined,
  }
}

interface SnapshotRow {
  seq: string
  id: string
  entity_id: string
  after: string
  tenant_id: string | null
  txid: string
  created_at: Date
  key: string
}

/** How a read selects rows: the one with this key, or those after a key, in key order. */
export type Selection =
  | { key: string }
  | { afterKey: string | undefined; where: string | undefined; limit: number }

/**
 * Rows become events as the capture trigger would write an INSERT of them, taking a seq from
 * the change log's own sequence so their order among live changes shows. FOR SHARE: a write to
 * a row read here waits until the caller's transaction (which queues the snapshot) commits, so
 * its change is queued after the snapshot.
 */
function selectStatement(t: SnapshotTable, s: Selection): string {
  const cols = t.keys.map((k) => `t.${quoteIdent(k.name)}`)
  const params = t.keys.map((k, i) => `($1::jsonb ->> ${i})::${k.type}`)
  const tuple = (xs: string[]) => `(${xs.join(', ')})`
  const entityId =
    t.keys.length === 1
      ? `r ->> ${literal(t.keys[0]?.name ?? '')}`
      : `jsonb_build_array(${t.keys.map((k) => `r -> ${literal(k.name)}`).join(', ')})::text`
  // Without a position $1 is null, and the first page reads from the start of the key.
  const position =
    'key' in s
      ? `${tuple(cols)} = ${tuple(params)}`
      : s.afterKey === undefined
        ? '$1::jsonb is null'
        : `${tuple(cols)} > ${tuple(params)}`
  const filter = 'key' in s || !s.where ? position : `${position} and (${s.where})`
  const tenant = t.tenantColumn ? `r ->> ${literal(t.tenantColumn)}` : 'null'
  return `select nextval(pg_get_serial_sequence('observers.change_log', 'seq')) as seq,
                 gen_random_uuid()::text as id, ${entityId} as entity_id, r::text as after,
                 ${tenant} as tenant_id, txid_current()::text as txid, now() as created_at,
                 jsonb_build_array(${t.keys.map((k) => `r -> ${literal(k.name)}`).join(', ')})::text as key
            from (select to_jsonb(t) as r from ${t.sqlName} t
                   where ${filter}
                   order by ${cols.join(', ')}
                   ${'key' in s ? '' : `limit ${Math.max(1, Math.trunc(s.limit))}`}
                   for share of t) rows`
}

const literal = (text: string) => `'${text.replaceAll("'", "''")}'`

export interface SnapshotPage {
  events: SourceEvent[]
  /** The key of the last row read (JSON array text), to read the next page after it. */
  lastKey: string | undefined
}

/** Reads rows as snapshot events (`event: "INSERT"`, `snapshot: true`) inside the caller's transaction. */
export async function readSnapshots(db: Queryable, t: SnapshotTable, s: Selection): Promise<SnapshotPage> {
  const key = 'key' in s ? s.key : s.afterKey
  // Always a parameter: a query with one goes over the extended protocol, which runs a single
  // statement whatever a WHERE clause holds.
  const { rows } = await db.query<SnapshotRow>(selectStatement(t, s), [key ?? null])
  const events = rows.map(
    (r): SourceEvent => ({
      id: r.id,
      seq: Number(r.seq),
      event: 'INSERT',
      entity: t.entity,
      entity_id: r.entity_id,
      before: null,
      after: parseExact(r.after) as Row,
      changed: [],
      tenant_id: r.tenant_id,
      actor_id: null,
      txid: r.txid,
      created_at: r.created_at.toISOString(),
      snapshot: true,
    }),
  )
  const last = rows.at(-1)
  return { events, lastKey: last?.key }
}

/** `--row`: one value for a one-column key, a JSON array for a composite key; returns JSON array text. */
export function parseRowKey(text: string, t: SnapshotTable): string {
  let key: unknown[] = [text]
  if (t.keys.length > 1) {
    try {
      const parsed = parseExact(text)
      key = Array.isArray(parsed) ? parsed : []
    } catch {
      key = []
    }
  }
  if (key.length !== t.keys.length) {
    throw new ConfigError(
      ErrorCode.InvalidConfig,
      `${t.entity} has a ${t.keys.length}-column primary key (${t.keys.map((k) => k.name).join(', ')}): give --row as a JSON array of ${t.keys.length} values; got ${text}`,
    )
  }
  return stringifyExact(key.map((v) => (typeof v === 'string' ? v : stringifyExact(v))))
}
