import { InputError } from '../errors/errors.ts'
import { normaliseEntity } from '../observers/load.ts'
import type { DlqFilter } from '../queue/dlq.ts'

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

// Four-digit years: what ISO-8601 spells without extensions, and well inside Postgres's range.
const earliest = Date.parse('0001-01-01T00:00:00Z')
const latest = Date.parse('9999-12-31T23:59:59.999Z')
const isoTime =
  /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/i

function invalid(what: string, text: string, expected: string): InputError {
  return new InputError(`${what} must be ${expected}; got "${text}"`)
}

/** Milliseconds since the epoch; NaN when `text` is neither form. */
function timeOf(text: string, now: number): number {
  const relative = /^(\d+)(ms|s|m|h|d)$/.exec(text)
  if (relative) return now - Number(relative[1]) * (units[relative[2] ?? ''] ?? Number.NaN)
  return isoTime.test(text) ? Date.parse(text) : Number.NaN
}

/**
 * A point in time: ISO-8601 (`2025-01-31T12:00:00Z`) or an age relative to `now`
 * (`90s`, `15m`, `1h`, `7d`), within the years 0001-9999. Throws OB001 naming `what` otherwise.
 */
export function parseTime(text: string, what: string, now = Date.now()): Date {
  const at = timeOf(text.trim(), now)
  if (Number.isNaN(at)) throw invalid(what, text, 'an ISO-8601 time or an age such as 30m, 1h, 7d')
  if (at < earliest || at > latest) throw invalid(what, text, 'a time between the years 0001 and 9999')
  return new Date(at)
}

export function parsePositiveInt(text: string, what: string, max: number): number {
  const n = /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN
  if (!(n >= 1 && n <= max)) throw invalid(what, text, `an integer from 1 to ${max}`)
  return n
}

/** The filter fields shared by the API's query string and the CLI's options. */
export interface DlqFilterInput {
  observer?: string | undefined
  type?: string | undefined
  entity?: string | undefined
  since?: string | undefined
  until?: string | undefined
  code?: string | undefined
}

/** Free text compared in SQL; Postgres refuses a NUL in text, which must be the caller's 400. */
function text(value: string | undefined, what: string): string | undefined {
  if (!value) return undefined
  if (value.includes('\u0000')) throw invalid(what, value.replaceAll('\u0000', '\\0'), 'text without NUL')
  return value
}

export function parseDlqFilter(input: DlqFilterInput, now = Date.now()): DlqFilter {
  const entity = text(input.entity, 'entity')
  return {
    observer: text(input.observer, 'observer'),
    type: text(input.type, 'type'),
    entity: entity ? normaliseEntity(entity) : undefined,
    since: input.since ? parseTime(input.since, 'since', now) : undefined,
    until: input.until ? parseTime(input.until, 'until', now) : undefined,
    code: text(input.code, 'code'),
  }
}

/** True when the filter narrows the selection (bulk operations on everything need consent). */
export function narrows(filter: DlqFilter): boolean {
  return Object.values(filter).some((v) => v !== undefined)
}
