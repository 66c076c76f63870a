import { holdPaused, releasePaused } from '../queue/pgboss-sql.ts'
import type { Attempt } from '../queue/settle.ts'
import { type HoldDeps, startRefresher } from './refresher.ts'

/** The pause targets a delivery answers to: its observer, and that observer's action. */
export function pauseTargets(observer: string, actionIndex: number): string[] {
  return [observer, `${observer}#${actionIndex}`]
}

export interface PauseState {
  /** Targets paused in the database at the last read: observer names and `name#index`. */
  paused(): ReadonlySet<string>
  isPaused(observer: string, actionIndex: number): boolean
  /** Puts a fetched job of a paused target back to wait; false when its target is not paused. */
  hold(job: Attempt, observer: string, actionIndex: number): Promise<boolean>
  /** Re-reads the table, and releases the held jobs of targets resumed since. */
  refresh(): Promise<void>
  stop(): Promise<void>
}

export type PauseOptions = HoldDeps

export async function startPauseState(o: PauseOptions): Promise<PauseState> {
  let paused = new Set<string>()
  const read = async () => {
    const { rows } = await o.pool.query<{ target: string }>('select target from observers.paused')
    const next = new Set(rows.map((r) => r.target))
    const resumed = [...paused].some((t) => !next.has(t))
    paused = next
    if (resumed) await release()
  }
  const release = async () => {
    const { rows } = await o.statements.run(o.pool, releasePaused, [o.retentionSeconds])
    for (const queue of new Set(rows.map((r: { name: string }) => r.name))) o.wake(queue)
  }
  const refresher = await startRefresher(read, { ...o, what: 'the paused observers' })
  await refresher.refresh()
  // A worker starting after a resume it did not see releases what that resume left held.
  await release()
  const isPaused = (observer: string, actionIndex: number) =>
    pauseTargets(observer, actionIndex).some((t) => paused.has(t))
  return {
    paused: () => paused,
    isPaused,
    async hold(job, observer, actionIndex) {
      if (!isPaused(observer, actionIndex)) return false
      const { rows } = await o.statements.run(o.pool, holdPaused, [
        job.queue,
        job.id,
        job.retryCount,
        pauseTargets(observer, actionIndex),
        o.retentionSeconds,
      ])
      return rows.length === 1
    },
    refresh: refresher.refresh,
    stop: refresher.stop,
  }
}
