import { ErrorCode } from '../../errors/errors.ts'
import type { EventKind, Row } from '../../event/event.ts'
import { parseExact, stringifyExact } from '../../json/exact.ts'
import { entryEventId, isUuid } from '../ids.ts'
import type { MalformedEntry, SourceEntry } from '../types.ts'

/** One change-log row as the FraiseQL source selects it: every column as text (JSON as JSON text). */
export interface FraiseqlRow {
  entry_key: string
  id: string | null
  tenant_id: string | null
  fk_customer_org: string | null
  fk_contact: string | null
  object_type: string | null
  object_id: string | null
  modification_type: string | null
  object_data: string | null
  object_data_before: string | null
  updated_fields: string | null
  extra_metadata: string | null
  trace_context: string | null
  created_at: string
  txid: string
}

const jsonColumns = [
  'object_data',
  'object_data_before',
  'updated_fields',
  'extra_metadata',
  'trace_context',
] as const
type JsonColumn = (typeof jsonColumns)[number]

interface Operation {
  event: EventKind
  snapshot?: true
}

// modification_type as FraiseQL writes it, and Debezium's op letters; `r` is a snapshot read.
const operations: Record<string, Operation> = {
  insert: { event: 'INSERT' },
  c: { event: 'INSERT' },
  create: { event: 'INSERT' },
  created: { event: 'INSERT' },
  update: { event: 'UPDATE' },
  u: { event: 'UPDATE' },
  updated: { event: 'UPDATE' },
  delete: { event: 'DELETE' },
  d: { event: 'DELETE' },
  deleted: { event: 'DELETE' },
  r: { event: 'INSERT', snapshot: true },
}

/** Turns one change-log row into the event of SPEC §5, or says why it cannot. */
export function toFraiseqlEntry(row: FraiseqlRow, source: string): SourceEntry {
  const at = { key: row.entry_key, createdAt: row.created_at }
  const bad = (code: MalformedEntry['code'], error: string): SourceEntry => ({
    ...at,
    malformed: {
      key: row.entry_key,
      code,
      error,
      entity: row.object_type,
      entityId: row.object_id,
      entry: { ...row },
    },
  })
  const json = {} as Record<JsonColumn, unknown>
  for (const column of jsonColumns) {
    const text = row[column]
    try {
      json[column] = text === null ? null : parseExact(text)
    } catch {
      return bad(ErrorCode.DatabaseError, `${column} of change-log entry ${row.entry_key} is not valid JSON`)
    }
  }
  if (!row.object_type)
    return bad(ErrorCode.InvalidConfig, `change-log entry ${row.entry_key} has no object_type`)
  if (!row.object_id)
    return bad(ErrorCode.InvalidConfig, `change-log entry ${row.entry_key} has no object_id`)
  const image = readImages(json.object_data, json.object_data_before, row.modification_type)
  if ('error' in image)
    return bad(ErrorCode.InvalidConfig, `change-log entry ${row.entry_key}: ${image.error}`)
  const { op, before, after } = image
  const traceparent = traceparentOf(json.trace_context)
  return {
    ...at,
    event: {
      id: isUuid(row.id) ? row.id.toLowerCase() : entryEventId(source, row.entry_key),
      seq: Number(row.entry_key),
      event: op.event,
      entity: row.object_type,
      entity_id: row.object_id,
      before,
      after,
      changed: changedColumns(op.event, json.updated_fields, before, after),
      tenant_id: row.tenant_id ?? row.fk_customer_org,
      actor_id: row.fk_contact,
      txid: row.txid,
      created_at: row.created_at,
      source,
      metadata: json.extra_metadata,
      ...(traceparent ? { traceparent } : {}),
      ...(op.snapshot ? { snapshot: true as const } : {}),
    },
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isEnvelope(v: unknown): v is { op: string; before?: unknown; after?: unknown } {
  return isObject(v) && typeof v.op === 'string' && ('before' in v || 'after' in v)
}

type Images = { op: Operation; before: Row | null; after: Row | null } | { error: string }

/** object_data is either a row image or a Debezium envelope {op, before, after, source}. */
function readImages(data: unknown, beforeColumn: unknown, modificationType: string | null): Images {
  const envelope = isEnvelope(data) ? data : undefined
  const opText = envelope?.op ?? modificationType ?? ''
  const op = operations[opText.toLowerCase()]
  if (!op) return { error: `unknown modification type "${opText}"` }
  const [before, after] = envelope
    ? [envelope.before, envelope.after]
    : op.event === 'DELETE'
      ? [beforeColumn ?? data, null]
      : [beforeColumn, data]
  for (const [name, image] of [
    ['before', before],
    ['after', after],
  ] as const) {
    if (image !== null && image !== undefined && !isObject(image))
      return { error: `the ${name} image is not a JSON object` }
  }
  return { op, before: (before as Row | undefined) ?? null, after: (after as Row | undefined) ?? null }
}

/**
 * updated_fields when the producer wrote them; otherwise the columns whose values differ. An
 * UPDATE with neither a field list nor a before image counts every column as changed, so it fires.
 */
function changedColumns(event: EventKind, updated: unknown, before: Row | null, after: Row | null) {
  if (event !== 'UPDATE') return []
  if (Array.isArray(updated) && updated.every((f) => typeof f === 'string')) return updated as string[]
  if (!after) return []
  if (!before) return Object.keys(after).sort()
  const keys = new Set([...Object.keys(before), ...Object.keys(after)])
  return [...keys].filter((k) => stringifyExact(before[k]) !== stringifyExact(after[k])).sort()
}

const traceparentPattern = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/

/** trace_context holds either a `traceparent` string or its parsed parts. */
function traceparentOf(context: unknown): string | undefined {
  if (!isObject(context)) return undefined
  const { traceparent, version, trace_id, parent_id, trace_flags } = context
  const flags = typeof trace_flags === 'number' ? trace_flags.toString(16).padStart(2, '0') : trace_flags
  const candidate =
    typeof traceparent === 'string'
      ? traceparent
      : `${version ?? '00'}-${trace_id}-${parent_id}-${flags ?? '01'}`
  return traceparentPattern.test(candidate) ? candidate : undefined
}
