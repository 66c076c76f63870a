import type { Queryable } from '../../src/db/pool.ts'

/** FraiseQL's documented change-log contract, the columns this source reads. */
export async function createFraiseqlChangeLog(db: Queryable, table = 'core.tb_entity_change_log') {
  const schema = table.split('.')[0]
  await db.query(`create schema if not exists ${schema}`)
  await db.query(`create table ${table} (
    pk_entity_change_log bigint generated always as identity primary key,
    id uuid not null default gen_random_uuid(),
    tenant_id uuid,
    fk_customer_org bigint,
    fk_contact bigint,
    object_type text not null,
    modification_type text not null,
    object_id uuid,
    object_data jsonb,
    object_data_before jsonb,
    updated_fields text[],
    extra_metadata jsonb,
    trace_context jsonb,
    created_at timestamptz not null default now())`)
  await db.query(`create index on ${table} (created_at)`)
}

export interface FraiseqlChange {
  object_type?: string
  object_id?: string | null
  modification_type?: string
  object_data?: unknown
  object_data_before?: unknown
  updated_fields?: string[]
  fk_customer_org?: number
  fk_contact?: number
  extra_metadata?: unknown
}

/** Writes one change-log row as a FraiseQL mutation would; returns its key. */
export async function insertFraiseqlChange(
  db: Queryable,
  change: FraiseqlChange,
  table = 'core.tb_entity_change_log',
): Promise<string> {
  const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v))
  const { rows } = await db.query<{ k: string }>(
    `insert into ${table} (object_type, object_id, modification_type, object_data, object_data_before,
       updated_fields, fk_customer_org, fk_contact, extra_metadata)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning pk_entity_change_log::text as k`,
    [
      change.object_type ?? 'Order',
      change.object_id === undefined ? crypto.randomUUID() : change.object_id,
      change.modification_type ?? 'INSERT',
      json(change.object_data ?? {}),
      json(change.object_data_before),
      change.updated_fields ?? null,
      change.fk_customer_org ?? null,
      change.fk_contact ?? null,
      json(change.extra_metadata),
    ],
  )
  return rows[0]!.k
}
