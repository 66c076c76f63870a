import type { Later, PoolClient } from '../db/pool.ts'
import type { Statements } from '../db/statements.ts'
import { type FetchedJob, insertActive, type QueuedDelivery } from '../queue/boss.ts'
import type { Lease } from '../queue/runner.ts'

/** Keeps up to `n` free slots of this process's runner of the plain queue `queue`. */
export type LeaseSlots = (queue: string, n: number) => Lease | undefined

/**
 * Slots kept for a pass's jobs and the jobs inserted into them, started once the pass commits.
 * The insert is not waited for: the pass's COMMIT goes in its round trip (withTransaction's `later`).
 */
export interface Leased {
  lease: Lease
  jobs: Promise<FetchedJob[]>
}

/**
 * Inserts the jobs of plain queues that this process's runners have free slots for already
 * active, and appends their leases to `leased`: they run as soon as the pass commits, without a
 * fetch and with one write of the job row fewer. Jobs of ordered and limited queues, whose fetch
 * decides which of them may run, and those beyond the free slots are returned, to be enqueued.
 */
export function insertLeased(
  client: PoolClient,
  later: Later,
  statements: Statements,
  leaseSlots: LeaseSlots,
  jobs: readonly QueuedDelivery[],
  leased: Leased[],
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
    leased.push({ lease, jobs: later(insertActive(client, statements, queue, items.slice(0, lease.size))) })
    rest.push(...items.slice(lease.size))
  }
  return rest
}
