import type { ExecutionReport } from '../execute/execute.ts'
import type { QueuedDelivery } from '../queue/boss.ts'

/** What this process has seen of one observer since it started (GET /api/observers). */
export interface ObserverStatsSnapshot {
  /** deliveries this process enqueued for the observer (as dispatcher) */
  matched: number
  succeeded: number
  /** attempts that failed for good */
  failed: number
  /** attempts that failed transiently and were scheduled again */
  retried: number
  last_error: { at: string; code: string | undefined; message: string; delivery_id: string } | null
  /** over the last `windowSize` attempts; null before the first */
  p50_ms: number | null
  p95_ms: number | null
}

interface Entry {
  matched: number
  succeeded: number
  failed: number
  retried: number
  lastError: ObserverStatsSnapshot['last_error']
  durations: number[]
  next: number
}

export interface ObserverStats {
  recordDispatch(jobs: readonly QueuedDelivery[]): void
  recordExecution(report: ExecutionReport): void
  snapshot(observer: string): ObserverStatsSnapshot
}

/** Nearest-rank percentile of an unsorted sample. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? null
}

/** Counters and a ring of recent durations per observer, kept in memory. */
export function createObserverStats(windowSize = 500): ObserverStats {
  const entries = new Map<string, Entry>()
  const entry = (observer: string) => {
    let e = entries.get(observer)
    if (!e) {
      e = { matched: 0, succeeded: 0, failed: 0, retried: 0, lastError: null, durations: [], next: 0 }
      entries.set(observer, e)
    }
    return e
  }
  return {
    recordDispatch(jobs) {
      for (const j of jobs) entry(j.delivery.observer).matched++
    },
    recordExecution(r) {
      const e = entry(r.delivery.observer)
      if (r.outcome === 'success') e.succeeded++
      else if (r.outcome === 'retry') e.retried++
      else e.failed++
      if (r.outcome !== 'success') {
        e.lastError = {
          at: new Date().toISOString(),
          code: r.code,
          message: r.error ?? '',
          delivery_id: r.delivery.delivery_id,
        }
      }
      e.durations[e.next] = r.durationMs
      e.next = (e.next + 1) % windowSize
    },
    snapshot(observer) {
      const e = entries.get(observer)
      if (!e) {
        return {
          matched: 0,
          succeeded: 0,
          failed: 0,
          retried: 0,
          last_error: null,
          p50_ms: null,
          p95_ms: null,
        }
      }
      return {
        matched: e.matched,
        succeeded: e.succeeded,
        failed: e.failed,
        retried: e.retried,
        last_error: e.lastError,
        p50_ms: percentile(e.durations, 50),
        p95_ms: percentile(e.durations, 95),
      }
    },
  }
}
