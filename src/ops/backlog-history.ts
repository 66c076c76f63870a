import type { Pool } from '../db/pool.ts'
import { type BacklogSample, listBacklogSamples, recordBacklogSample } from '../db/queries/backlog-samples.ts'

export type { BacklogSample }

export interface BacklogHistory {
  readonly intervalSeconds: number
  /** The cluster's samples of the last hour, oldest first. */
  samples(): Promise<BacklogSample[]>
  stop(): void
}

const windowSeconds = 3600
const keepSeconds = 86_400

/**
 * The backlog and dispatch lag over the last hour, for the console's chart, kept in
 * observers.backlog_samples: every worker serving the console offers a sample each `intervalMs`
 * and the first one per bucket is kept, so the chart is cluster-wide and outlives restarts.
 * Every worker must use the same interval for buckets to line up: it is not configurable.
 */
export function startBacklogHistory(pool: Pool, intervalMs = 15_000): BacklogHistory {
  const intervalSeconds = intervalMs / 1000
  const sample = async () => {
    try {
      await recordBacklogSample(pool, intervalSeconds, keepSeconds)
    } catch {
      // A missed sample is a gap in the chart; /readyz and the log report database trouble.
    }
  }
  void sample()
  const timer = setInterval(sample, intervalMs)
  timer.unref()
  return {
    intervalSeconds,
    samples: () => listBacklogSamples(pool, windowSeconds),
    stop: () => clearInterval(timer),
  }
}
