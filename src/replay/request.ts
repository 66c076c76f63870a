import { InputError } from '../errors/errors.ts'
import { normaliseEntity } from '../observers/load.ts'
import { ownSource } from '../observers/types.ts'
import { parseTime } from '../ops/filters.ts'
import { parseSeqRange, type ReplayRange } from './replay.ts'

/** A replay as asked for, from the CLI's options or the API's body: all text. */
export interface ReplayRequest {
  since?: string | undefined
  until?: string | undefined
  seq?: string | undefined
  source?: string | undefined
  observer?: string | undefined
  entity?: string | undefined
  outcome?: string | undefined
  includeDelivered?: boolean | undefined
  dryRun?: boolean | undefined
}

/** Validates a replay request (OB001 on anything it cannot use); a time or a seq range is required. */
export function parseReplayRequest(
  r: ReplayRequest,
  now = Date.now(),
): { range: ReplayRange; includeDelivered: boolean; dryRun: boolean } {
  if (!r.since && !r.seq) throw new InputError('replay needs --since or --seq')
  if (r.outcome !== undefined && r.outcome !== 'failed') {
    throw new InputError(`outcome must be "failed"; got "${r.outcome}"`)
  }
  const source = r.source || ownSource
  return {
    range: {
      source,
      ...(r.since ? { since: parseTime(r.since, 'since', now) } : {}),
      ...(r.until ? { until: parseTime(r.until, 'until', now) } : {}),
      ...(r.seq ? parseSeqRange(r.seq) : {}),
      observer: r.observer,
      // Other sources name entities their own way (docs/sources.md): taken as given.
      entity: r.entity ? (source === ownSource ? normaliseEntity(r.entity) : r.entity) : undefined,
      onlyFailed: r.outcome === 'failed',
    },
    includeDelivered: r.includeDelivered === true,
    dryRun: r.dryRun === true,
  }
}
