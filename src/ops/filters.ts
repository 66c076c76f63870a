import { ConfigError, ErrorCode } from '../errors.ts'
import { normaliseEntity } from '../observers/load.ts'
import type { DlqFilter } from '../queue/dlq.ts'

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * A point in time: ISO-8601 (`2025-01-31T12:00:00Z`) or an age relative to `now`
 * (`90s`, `15m`, `1h`, `7d`). Throws OB001 naming `what` otherwise.
 */
export function parseTime(text: string, what: string, now = Date.now()): Date {
  const relative = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim())
  if (relative?.[1] && relative[2]) return new Date(now - Number(relative[1]) * (units[relative[2]] ?? 0))
  const at = Date.parse(text)
  if (Number.isNaN(at)) {
    throw new ConfigError(
      ErrorCode.InvalidConfig,
      `${what} must be an ISO-8601 time or an age such as 30m, 1h, 7d; got "${text}"`,
    )
  }
  return new Date(at)
}

export function parsePositiveInt(text: string, what: string, max: number): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new ConfigError(
      ErrorCode.InvalidConfig,
      `${what} must be an integer from 1 to ${max}; got "${text}"`,
    )
  }
  return n
}

/** The filter fields shared by the API's query string and the CLI's options. */
export interface DlqFilterInput {
  observer?: string | undefined
  type?: string | undefined
  entity?: string | undefined
  since?: string | undefined
  until?: string | undefined
}

export function parseDlqFilter(input: DlqFilterInput, now = Date.now()): DlqFilter {
  return {
    observer: input.observer || undefined,
    type: input.type || undefined,
    entity: input.entity ? normaliseEntity(input.entity) : undefined,
    since: input.since ? parseTime(input.since, 'since', now) : undefined,
    until: input.until ? parseTime(input.until, 'until', now) : undefined,
  }
}

/** True when the filter narrows the selection (bulk operations on everything need consent). */
export function narrows(filter: DlqFilter): boolean {
  return Object.values(filter).some((v) => v !== undefined)
}
