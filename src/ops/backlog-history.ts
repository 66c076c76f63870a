import type { Pool } from '../db/pool.ts'
import { backlog } from '../db/queries/change-log.ts'

export interface BacklogSample {
  at: string
  backlog: number
  oldest_seconds: number
}

export interface BacklogHistory {
  readonly intervalSeconds: number
  samples(): BacklogSample[]
  stop(): void
}

/**
 * The backlog and dispatch lag over the last hour, for the console's chart: one cheap count
 * every `intervalMs`, kept in memory by the process serving the console.
 */
export function startBacklogHistory(pool: Pool, intervalMs = 15_000, keepMs = 3600_000): BacklogHistory {
  const capacity = Math.ceil(keepMs / intervalMs)
  const ring: BacklogSample[] = []
  const sample = async () => {
    try {
      const b = await backlog(pool)
      ring.push({
        at: new Date().toISOString(),
        backlog: b.undispatched,
        oldest_seconds: Math.round(b.oldestAgeSeconds ?? 0),
      })
      if (ring.length > capacity) ring.shift()
    } catch {
      // A missed sample is a gap in the chart; /readyz and the log report database trouble.
    }
  }
  void sample()
  const timer = setInterval(sample, intervalMs)
  timer.unref()
  return {
    intervalSeconds: intervalMs / 1000,
    samples: () => [...ring],
    stop: () => clearInterval(timer),
  }
}
