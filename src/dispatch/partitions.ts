import { lockKeys, partitionLockId } from '../db/locks.ts'
import type { PartitionScope } from '../db/queries/change-log.ts'
import type { Logger } from '../log/log.ts'
import type { Listener } from './listener.ts'

/** The partitions of the change log this worker leads; see leadPartitions. */
export interface Partitions {
  /** What this worker may claim now, after looking at leadership again when that is due. */
  lead(): Promise<PartitionScope>
}

// A worker leading some partitions looks at leadership again this often, so a dead worker's
// partitions are taken over within about a second. One leading them all has nothing to take and
// looks only when asked: an idle lone worker sends nothing.
const lookEveryMs = 1_000
// A worker left with no partition asks the others to look again this often, in case the NOTIFY
// of its joining was missed.
const askEveryMs = 10_000

/**
 * Shares the change log's `count` partitions among the dispatching workers configured with the
 * same count (each holds a member lock for it). Each partition is led
 * by whoever holds its session advisory lock on its listener connection, so it passes on when that
 * worker dies or loses its connection. A worker leads at most ceil(count / workers): it takes free
 * partitions up to that share and lets go of any above it, telling the others (a NOTIFY) so they
 * take them at once. One worker alone leads every partition.
 */
export function leadPartitions(listener: Listener, count: number, log: Logger): Partitions {
  const held = new Set<number>()
  let session = 0
  let lookedAt = 0
  let askedAt = 0
  // Workers start their search at different partitions, so joiners rarely try the same lock.
  const offset = Math.floor(Math.random() * count)
  const scope = (): PartitionScope => ({ count, led: [...held].sort((a, b) => a - b) })
  const lockId = (p: number) => partitionLockId(count, p)

  /**
   * How many partitions this worker should lead. While workers configured with another count run
   * too (a change of OBSERVERS_DISPATCH_PARTITIONS), only the count whose longest-running worker
   * started first dispatches: a row's changes could otherwise be claimed by two transactions at
   * once, and pg-boss orders a row's jobs by when their transactions began, not by when they
   * committed. So a new count takes effect when the last worker with the old one has stopped.
   */
  const shareOf = async (): Promise<number> => {
    const counts = await listener.holders(lockKeys.memberClass)
    const mine = counts.find((c) => c.id === count)
    if (!mine) return 0
    const first = (a: (typeof counts)[number], b: (typeof counts)[number]) =>
      a.oldest !== null &&
      b.oldest !== null &&
      (a.oldest < b.oldest || (a.oldest === b.oldest && a.id < b.id))
    if (counts.some((c) => c !== mine && first(c, mine))) return 0
    return Math.ceil(count / mine.sessions)
  }

  const look = async () => {
    const share = await shareOf()
    let released = false
    for (const p of [...held].sort((a, b) => b - a)) {
      if (held.size <= share) break
      await listener.unlockPair(lockKeys.partitionClass, lockId(p))
      held.delete(p)
      released = true
    }
    for (let i = 0; i < count && held.size < share; i++) {
      const p = (offset + i) % count
      if (!held.has(p) && (await listener.tryLockPair(lockKeys.partitionClass, lockId(p)))) held.add(p)
    }
    return released
  }

  return {
    async lead() {
      const now = listener.session
      if (now !== session) {
        // A new connection holds none of the old one's locks: count ourselves in and tell the others.
        const joined = now !== 0
        held.clear()
        session = now
        lookedAt = 0
        if (joined) {
          await listener.tryLockPair(lockKeys.memberClass, count, 'shared')
          await listener.announce()
          askedAt = Date.now()
        }
      }
      if (session === 0) return scope()
      const asked = listener.takeRebalance()
      if (!asked && (held.size === count || Date.now() - lookedAt < lookEveryMs)) return scope()
      lookedAt = Date.now()
      const before = scope().led.join(',')
      const released = await look()
      // The connection may have gone while we looked: the locks went with it.
      if (listener.session !== session) held.clear()
      const after = scope().led.join(',')
      if (after !== before) {
        log.info(
          { partitions: scope().led, partition_count: count },
          after === ''
            ? 'this worker leads no dispatch partition'
            : `this worker leads dispatch partitions ${after} of ${count}`,
        )
      }
      if (released || (held.size === 0 && Date.now() - askedAt >= askEveryMs)) {
        await listener.announce()
        askedAt = Date.now()
      }
      return scope()
    },
  }
}
