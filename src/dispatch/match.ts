import { createHash } from 'node:crypto'
import type { MatchedDelivery } from '../event/delivery.ts'
import type { ChangeEvent, EventKind } from '../event/event.ts'
import { type Observer, ownSource } from '../observers/types.ts'
import type { QueuedDelivery } from '../queue/boss.ts'

/** A stable UUID for (event, observer, action): the same change always yields the same delivery id. */
export function deliveryId(eventId: string, observer: string, actionIndex: number): string {
  const h = createHash('sha1').update(`${eventId}\u0000${observer}\u0000${actionIndex}`).digest()
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x50
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80
  const hex = h.subarray(0, 16).toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/**
 * The job id of a delivery: the change's seq, then a hash of (observer, action). pg-boss breaks
 * created_on ties by id, and one dispatch transaction gives all its jobs the same created_on, so
 * seq-first ids keep strict-FIFO keys in commit order. Deterministic, so re-inserting is a no-op.
 * Seqs of different sources overlap, so other sources' names join the hash.
 */
export function jobId(seq: number, observer: string, actionIndex: number, source = ownSource): string {
  const scope = source === ownSource ? '' : `${source}\u0000`
  const hex =
    seq.toString(16).padStart(16, '0') +
    createHash('sha1').update(`${scope}${observer}\u0000${actionIndex}`).digest('hex').slice(0, 16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** Matches a change of `source` (our own change log when omitted) against that source's observers. */
export type Matcher = (event: ChangeEvent, source?: string) => QueuedDelivery[]

/**
 * Indexes observers by (source, entity, event) so matching a change never scans unrelated
 * observers. The matcher decides which deliveries a change makes; `toJob` (the delivery policy,
 * src/queue/policy.ts `jobOf`) decides their queue, expiry and destination group.
 */
export function buildMatcher(
  observers: readonly Observer[],
  toJob: (m: MatchedDelivery) => QueuedDelivery,
): Matcher {
  const index = new Map<string, Map<EventKind, Observer[]>>()
  const keyOf = (source: string, entity: string) => `${source}\u0000${entity}`
  for (const o of observers) {
    const key = keyOf(o.source, o.entity)
    const byEvent = index.get(key) ?? new Map<EventKind, Observer[]>()
    index.set(key, byEvent)
    for (const kind of o.events) byEvent.set(kind, [...(byEvent.get(kind) ?? []), o])
  }
  return (event, source = ownSource) => {
    const candidates = index.get(keyOf(source, event.entity))?.get(event.event)
    if (!candidates) return []
    const out: QueuedDelivery[] = []
    for (const o of candidates) {
      if (!fires(o, event)) continue
      o.actions.forEach((action, i) => {
        out.push(
          toJob({
            jobId: jobId(event.seq, o.name, i, source),
            orderingKey: o.ordering === 'entity' ? `${o.name}/${i}/${event.entity_id}` : undefined,
            delivery: {
              delivery_id: deliveryId(event.id, o.name, i),
              observer: o.name,
              action_index: i,
              action,
              retry: { ...o.retry, ...action.retry },
              on_failure: o.onFailure,
              event,
            },
          }),
        )
      })
    }
    return out
  }
}

function fires(o: Observer, event: ChangeEvent): boolean {
  if (event.event === 'UPDATE') {
    if (event.changed.length === 0 && !o.noopUpdates) return false
    if (o.columns && !o.columns.some((c) => event.changed.includes(c))) return false
  }
  return o.condition ? o.condition.test(event) : true
}
