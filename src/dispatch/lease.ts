import type { Later, PoolClient } from '../db/pool.ts'
import type { Statements } from '../db/statements.ts'
import { activeJob, insertActive, type QueuedDelivery } from '../queue/boss.ts'
import type { Lease } from '../queue/runner.ts'

/** Keeps up to `n` free slots of this process's runner of the plain queue `queue`. */
export type LeaseSlots = (queue: string, n: number) => Lease | undefined

/**
 * Inserts the jobs of plain queues that this process's runners have free slots for already
 * active, and starts them at once: their requests go out while the pass's COMMIT is in flight,
 * with no fetch, and each attempt settles once `committed` says the pass committed its job
 * (Lease in src/queue/runner.ts). Jobs of ordered and limited queues, whose fetch decides which
 * of them may run, and those beyond the free slots are returned, to be enqueued.
 */
export function insertLeased(
  client: PoolClient,
  later: Later,
  statements: Statements,
  leaseSlots: LeaseSlots,
  jobs: readonly QueuedDelivery[],
  committed: Promise<boolean>,
): QueuedDelivery[] {
  const fetched = (j: QueuedDelivery) => j.key !== undefined || j.group !== undefined
  const rest = jobs.filter(fetched)
  const plain = Map.groupBy(
    jobs.filter((j) => !fetched(j)),
    (j) => j.queue,
  )
  for (const [queue, items] of plain) {
    const lease = leaseSlots(queue, items.length)
    if (!lease) {
      rest.push(...items)
      continue
    }
    const active = items.slice(0, lease.size).map(activeJob)
    const ids = later(insertActive(client, statements, queue, active))
    const inserted = Promise.all([ids, committed]).then(
      ([ids, ok]) => new Set(ok ? ids : []),
      () => new Set<string>(),
    )
    lease.start(active, inserted)
    rest.push(...items.slice(lease.size))
  }
  return rest
}
