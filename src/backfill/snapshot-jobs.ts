import { buildMatcher } from '../dispatch/match.ts'
import type { Observer } from '../observers/types.ts'
import type { QueuedDelivery } from '../queue/boss.ts'
import { jobOf } from '../queue/policy.ts'
import type { SourceEvent } from '../sources/types.ts'

/**
 * The deliveries of snapshot events through `observers`: each is an INSERT whatever the
 * observer's `events`, its condition applies unless `force`. Job ids are left to pg-boss, as
 * the same row may be snapshotted more than once.
 */
export function snapshotJobs(observers: readonly Observer[], events: SourceEvent[], force: boolean) {
  const matcher = buildMatcher(
    observers.map((o) => ({
      ...o,
      events: new Set(['INSERT'] as const),
      condition: force ? undefined : o.condition,
    })),
    jobOf,
  )
  return events.flatMap((e) => matcher(e)).map((j): QueuedDelivery => ({ ...j, jobId: undefined }))
}
