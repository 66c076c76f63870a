/**
 * Every advisory lock pg-observers takes, in one place. Keys share the prefix 7311902 so an
 * operator reading pg_locks can tell ours apart. A bigint key shows in pg_locks as classid (its
 * high 32 bits) and objid (its low 32 bits) with objsubid 1; a pair of ints as classid and objid
 * with objsubid 2.
 */
export const lockKeys = {
  /** Taken by each migrator around the whole run (src/db/migrate.ts). */
  migration: 7_311_902_114,
  /**
   * Held by one worker's listener connection: that worker runs the database-wide chores
   * (housekeeping) and counts as "the dispatcher leader" in `observers status`.
   */
  leader: 7_311_902_115,
  /**
   * Held exclusively by a dispatcher that sleeps; the capture trigger notifies only then
   * (migrations/0004_dispatch_queue.sql and 0011 name the same key).
   */
  sleep: 7_311_902_116,
  /**
   * Class of the member locks, with the worker's partition count: held shared by every dispatching
   * worker's listener connection, so counting holders counts the workers sharing those partitions.
   */
  memberClass: 731_190_213,
  /** Class of the per-source dispatch locks, with hashtext(source name) (src/sources/ledger.ts). */
  sourceClass: 731_190_211,
  /** Class of the change-log partition locks, with partitionLockId(count, partition). */
  partitionClass: 731_190_212,
  /**
   * Class of the fetch locks, with hashtext(queue name): fetches of a queue whose jobs carry a
   * group take turns under it (src/queue/runner.ts).
   */
  fetchClass: 731_190_214,
  /** Class of the watch locks, with the table's oid: one observers.watch of a table at a time (migrations/0013). */
  watchClass: 731_190_215,
} as const

/** Largest partition count: the count and the partition share one int of the lock key. */
export const maxPartitions = 1024

/**
 * The second int of a partition's lock. The count is part of it, so workers configured with
 * different counts during a change never think they lead the same partition.
 */
export function partitionLockId(count: number, partition: number): number {
  return count * 65_536 + partition
}

/** How pg_locks shows a bigint key: `classid` and `objid`, each an oid. */
export function lockParts(key: number): { classid: number; objid: number } {
  const k = BigInt(key)
  return { classid: Number(k >> 32n), objid: Number(k & 0xffffffffn) }
}
