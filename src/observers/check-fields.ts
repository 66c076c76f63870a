import { splitEntity } from '../capture/watch.ts'
import { referencedFields } from '../conditions/index.ts'
import type { Queryable } from '../db/pool.ts'
import { ErrorCode } from '../errors/errors.ts'
import type { Logger } from '../log/log.ts'
import { type Observer, ownSource } from './types.ts'

/**
 * Warns about condition fields that no column of the watched table has. Not an error: rows
 * differ, and a JSON path may name a key only some rows carry; but a typo here means the
 * condition silently reads null, which is worth a line in the log.
 */
export async function warnUnknownFields(
  db: Queryable,
  observers: readonly Observer[],
  log: Logger,
): Promise<void> {
  const columnsOf = new Map<string, Set<string>>()
  for (const o of observers) {
    if (!o.condition || o.source !== ownSource) continue
    let columns = columnsOf.get(o.entity)
    if (!columns) {
      const [schema, table] = splitEntity(o.entity)
      const { rows } = await db.query<{ attname: string }>(
        `select attname from pg_attribute
          where attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) and attnum > 0 and not attisdropped`,
        [schema, table],
      )
      columns = new Set(rows.map((r) => r.attname))
      columnsOf.set(o.entity, columns)
    }
    const known = columns
    const unknown = referencedFields(o.condition.source).filter((f) => known.size > 0 && !known.has(f))
    for (const field of unknown) {
      log.warn(
        { code: ErrorCode.InvalidCondition, observer: o.name, file: o.file, path: '/condition', field },
        `${ErrorCode.InvalidCondition}: observer "${o.name}": the condition reads "${field}", which table ${o.entity} has no column of; it will read null`,
      )
    }
  }
}
