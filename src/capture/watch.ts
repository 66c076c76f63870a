import type { Queryable } from '../db/pool.ts'
import { AppError, coerceError, ErrorCode, ObserverFileError } from '../errors/errors.ts'
import { entityProblem, parseEntity } from '../observers/entity.ts'
import { type Observer, ownSource } from '../observers/types.ts'

/** `schema.table` → the two identifier parts, unquoted (docs/observers.md, entity names). */
export function splitEntity(entity: string): [string, string] {
  try {
    return parseEntity(entity)
  } catch (err) {
    throw new AppError(ErrorCode.InvalidConfig, coerceError(err).message, { cause: err })
  }
}

interface WatchSpec {
  entity: string
  tenantColumn: string | null
  noopUpdates: boolean
  files: string[]
}

function specs(observers: readonly Observer[]): Map<string, WatchSpec> {
  const byEntity = new Map<string, WatchSpec>()
  // Tables of other sources are captured by those sources (docs/sources.md).
  for (const o of observers.filter((o) => o.source === ownSource)) {
    const spec = byEntity.get(o.entity) ?? {
      entity: o.entity,
      tenantColumn: null,
      noopUpdates: false,
      files: [],
    }
    spec.tenantColumn ??= o.tenantColumn ?? null
    spec.noopUpdates ||= o.noopUpdates
    spec.files.push(o.file)
    byEntity.set(o.entity, spec)
  }
  return byEntity
}

async function resolveTable(db: Queryable, entity: string): Promise<number | undefined> {
  const [schema, table] = splitEntity(entity)
  const { rows } = await db.query<{ oid: number | null }>(
    "select to_regclass(format('%I.%I', $1::text, $2::text))::oid as oid",
    [schema, table],
  )
  return rows[0]?.oid ?? undefined
}

/** Attaches the capture trigger to `entity`; identifiers are quoted by Postgres, never by us. */
export async function watchTable(
  db: Queryable,
  entity: string,
  opts: { tenantColumn: string | null; actorSetting: string; noopUpdates: boolean },
): Promise<boolean> {
  // Capturing the change log's own writes would recurse until Postgres' stack limit.
  const refused = entityProblem(entity)
  if (refused) throw new AppError(ErrorCode.InvalidConfig, refused)
  const oid = await resolveTable(db, entity)
  if (oid === undefined) return false
  await db.query('select observers.watch($1::oid::regclass, $2, $3, $4)', [
    oid,
    opts.tenantColumn,
    opts.actorSetting,
    opts.noopUpdates,
  ])
  return true
}

export async function unwatchTable(db: Queryable, entity: string): Promise<boolean> {
  const oid = await resolveTable(db, entity)
  if (oid === undefined) return false
  await db.query('select observers.unwatch($1::oid::regclass)', [oid])
  return true
}

/**
 * Watches every table the observers of our own source name, skipping tables already watched the same way.
 * Observers on a missing (or unwatchable) table are returned as problems and left out.
 */
export async function watchObservedTables(
  db: Queryable,
  observers: readonly Observer[],
  actorSetting: string,
): Promise<{ observers: Observer[]; problems: ObserverFileError[] }> {
  const { rows: current } = await db.query<{
    entity: string
    tenant_column: string | null
    noop_updates: boolean
    fits: boolean
    row_level: boolean
  }>(
    // A table dropped and re-created since it was watched has lost its triggers: watch it again.
    // One whose capture is not the kind it now needs (docs/database.md) is watched again too.
    `select w.entity, w.tenant_column, w.noop_updates,
            w.capture = observers.capture_mode(w.relid) as fits, w.capture = 'row' as row_level
       from observers.watched w
      where exists (select 1 from pg_trigger t where t.tgrelid = w.relid
                       and t.tgname = case w.capture when 'row' then 'observers_capture' else 'observers_capture_update' end)`,
  )
  const existing = new Map(current.map((r) => [r.entity, r]))
  const failed = new Set<string>()
  const problems: ObserverFileError[] = []
  for (const spec of specs(observers).values()) {
    const had = existing.get(spec.entity)
    const same = had && had.tenant_column === spec.tenantColumn && had.noop_updates === spec.noopUpdates
    if (same && had.fits) continue
    let message: string | undefined
    try {
      const found = await watchTable(db, spec.entity, { ...spec, actorSetting })
      if (!found) message = `table "${spec.entity}" does not exist`
    } catch (err) {
      // A row-level trigger captures every change, only at a higher cost: a role that may not
      // move the table to statement-level capture keeps it (`observers migrate` moves it).
      if (same && had.row_level && (err as { code?: string }).code === '42501') continue
      // A least-privilege worker may not create triggers: the table's owner watches it.
      const hint =
        (err as { code?: string }).code === '42501'
          ? `; run \`observers watch ${spec.entity}\` as the table's owner (docs/database.md)`
          : ''
      message = `cannot watch table "${spec.entity}": ${coerceError(err).message}${hint}`
    }
    if (message) {
      failed.add(spec.entity)
      for (const file of spec.files)
        problems.push(new ObserverFileError(ErrorCode.InvalidConfig, file, '/entity', message))
    }
  }
  return { observers: observers.filter((o) => o.source !== ownSource || !failed.has(o.entity)), problems }
}
