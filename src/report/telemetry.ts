import type { Pool } from '../db/pool.ts'
import { backlog } from '../db/queries/change-log.ts'
import type { ChangeEvent } from '../event/event.ts'
import type { ExecutionReport } from '../execute/execute.ts'
import type { QueuedDelivery } from '../queue/boss.ts'
import { countDeadLetters } from '../queue/stats.ts'
import { createExecutionFeed, type ExecutionFeed } from './feed.ts'
import { createMetrics, type GaugeSample, type Metrics } from './metrics.ts'

/** Everything the worker tells the ops surface: metrics and the live stream. */
export interface Telemetry {
  readonly metrics: Metrics
  readonly feed: ExecutionFeed
  onReport(report: ExecutionReport): void
  onDispatched(events: ChangeEvent[], jobs: QueuedDelivery[]): void
  onConditionError(observer: string): void
}

export async function sampleGauges(pool: Pool): Promise<GaugeSample> {
  const [dlqSize, log] = await Promise.all([countDeadLetters(pool), backlog(pool)])
  return { dlqSize, backlog: log.undispatched, oldestUndispatchedSeconds: log.oldestAgeSeconds ?? 0 }
}

export function createTelemetry(pool: Pool): Telemetry {
  const metrics = createMetrics({ sample: () => sampleGauges(pool) })
  const feed = createExecutionFeed()
  return {
    metrics,
    feed,
    onReport(report) {
      metrics.recordExecution(report)
      feed.publish(report)
    },
    onDispatched(events, jobs) {
      metrics.recordDispatch(events, jobs)
    },
    onConditionError: (observer) => metrics.recordConditionError(observer),
  }
}
