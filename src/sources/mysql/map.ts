import { ErrorCode } from '../../errors/errors.ts'
import { type EventKind, EventKinds, type Row } from '../../event/event.ts'
import { parseExact } from '../../json/exact.ts'
import { entryEventId } from '../ids.ts'
import type { MalformedEntry, SourceEntry } from '../types.ts'

/** One row of the MySQL change-log table, as the source selects it. */
export interface MysqlRow {
  id: string
  event: string
  entity: string
  entity_id: string
  before_image: string | null
  after_image: string | null
  changed: string | null
  tenant_id: string | null
  actor_id: string | null
  created_at: string
}

function parseColumn(row: MysqlRow, column: 'before_image' | 'after_image' | 'changed'): unknown {
  const text = row[column]
  return text === null ? null : parseExact(text)
}

/** Turns one change-log row into the event of SPEC §5, or says why it cannot. */
export function toMysqlEntry(row: MysqlRow, source: string): SourceEntry {
  const at = { key: row.id, createdAt: row.created_at }
  const bad = (code: MalformedEntry['code'], error: string): SourceEntry => ({
    ...at,
    malformed: { key: row.id, code, error, entity: row.entity, entityId: row.entity_id, entry: { ...row } },
  })
  let before: unknown
  let after: unknown
  let changed: unknown
  try {
    before = parseColumn(row, 'before_image')
    after = parseColumn(row, 'after_image')
    changed = parseColumn(row, 'changed')
  } catch {
    return bad(ErrorCode.DatabaseError, `change-log entry ${row.id} holds JSON that does not parse`)
  }
  if (!EventKinds.includes(row.event as EventKind)) {
    return bad(ErrorCode.InvalidConfig, `change-log entry ${row.id} has unknown event "${row.event}"`)
  }
  if (!row.entity || !row.entity_id) {
    return bad(ErrorCode.InvalidConfig, `change-log entry ${row.id} has no entity or entity_id`)
  }
  return {
    ...at,
    event: {
      id: entryEventId(source, row.id),
      seq: Number(row.id),
      event: row.event as EventKind,
      entity: row.entity,
      entity_id: row.entity_id,
      before: before as Row | null,
      after: after as Row | null,
      changed: Array.isArray(changed) ? (changed as string[]).sort() : [],
      tenant_id: row.tenant_id,
      actor_id: row.actor_id,
      txid: '',
      created_at: row.created_at,
      source,
    },
  }
}
