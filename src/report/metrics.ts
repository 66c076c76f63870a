import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { ChangeEvent } from '../event/event.ts'
import type { ExecutionReport } from '../execute/execute.ts'
import type { QueuedDelivery } from '../queue/boss.ts'
import type { SourceHealth } from '../sources/types.ts'

/** Database-backed gauges, read when Prometheus scrapes. */
export interface GaugeSample {
  dlqSize: number
  backlog: number
  oldestUndispatchedSeconds: number
}

export interface Metrics {
  readonly registry: Registry
  recordDispatch(events: readonly ChangeEvent[], jobs: readonly QueuedDelivery[]): void
  recordExecution(report: ExecutionReport): void
  recordConditionError(observer: string): void
  /** Prometheus text exposition of every metric. */
  scrape(): Promise<string>
}

const durationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
// One scrape reads the three database gauges from one sample instead of three.
const sampleReuseMs = 1000

function changeCounters(registers: Registry[]) {
  return {
    captured: new Counter({
      name: 'observers_changes_captured_total',
      help: 'Change-log rows claimed by the dispatcher',
      labelNames: ['entity', 'event'] as const,
      registers,
    }),
    dispatched: new Counter({
      name: 'observers_changes_dispatched_total',
      help: 'Changes that matched at least one observer and were turned into deliveries',
      labelNames: ['entity', 'event'] as const,
      registers,
    }),
    enqueued: new Counter({
      name: 'observers_deliveries_enqueued_total',
      help: 'Deliveries (one per matched observer and action) enqueued by the dispatcher',
      labelNames: ['observer', 'type'] as const,
      registers,
    }),
    conditionErrors: new Counter({
      name: 'observers_condition_errors_total',
      help: 'Condition evaluations that failed (OB004) and counted as false',
      labelNames: ['observer'] as const,
      registers,
    }),
  }
}

function actionCounters(registers: Registry[]) {
  return {
    actions: new Counter({
      name: 'observers_actions_total',
      help: 'Action attempts by outcome: success, retry (scheduled again) or failed (for good)',
      labelNames: ['observer', 'type', 'outcome'] as const,
      registers,
    }),
    duration: new Histogram({
      name: 'observers_action_duration_seconds',
      help: 'Duration of one action attempt',
      labelNames: ['observer', 'type'] as const,
      buckets: durationBuckets,
      registers,
    }),
    retries: new Counter({
      name: 'observers_retries_total',
      help: 'Attempts that failed transiently and were scheduled again',
      registers,
    }),
    alerts: new Counter({
      name: 'observers_alerts_total',
      help: 'Failed deliveries of observers with on_failure "alert"',
      registers,
    }),
  }
}

function gauges(registry: Registry, sample: () => Promise<GaugeSample>) {
  const gauge = (name: string, help: string, read: (s: GaugeSample) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        try {
          this.set(read(await sample()))
        } catch {
          // Keeps the last value: a scrape must not fail while the database is briefly unreachable.
        }
      },
    })
  gauge('observers_dlq_size', 'Dead-lettered deliveries waiting in observers.dlq', (s) => s.dlqSize)
  gauge('observers_change_log_backlog', 'Change-log rows not yet dispatched', (s) => s.backlog)
  gauge(
    'observers_change_log_oldest_undispatched_seconds',
    'Age of the oldest undispatched change (0 when none)',
    (s) => s.oldestUndispatchedSeconds,
  )
}

/** Per-source metrics (docs/sources.md), read from the dispatcher's health at scrape time. */
export function registerSourceGauges(registry: Registry, health: () => Promise<SourceHealth[]>): void {
  // Each collect sets every series to the health's current value; a count since start becomes
  // a counter by resetting and adding it whole.
  const collectFrom = (
    read: (h: SourceHealth) => number | null,
    write: (labels: SourceLabels, value: number) => void,
  ) =>
    async function (this: { reset(): void }) {
      try {
        const all = await health()
        this.reset()
        for (const h of all) {
          const value = read(h)
          if (value !== null) write({ source: h.name, kind: h.kind }, value)
        }
      } catch {
        // Keeps the last values: a scrape must not fail while a source is briefly unreachable.
      }
    }
  const gauge = (name: string, help: string, read: (h: SourceHealth) => number | null) => {
    const g: Gauge<'source' | 'kind'> = new Gauge({
      name,
      help,
      labelNames: ['source', 'kind'],
      registers: [registry],
      collect: collectFrom(read, (labels, value) => g.set(labels, value)),
    })
  }
  gauge('observers_source_backlog', 'Entries of a change source not yet dispatched', (h) => h.backlog)
  gauge(
    'observers_source_lag_seconds',
    'Age of the oldest undispatched entry of a source (0 when none)',
    (h) => (h.backlog === null ? null : (h.lagSeconds ?? 0)),
  )
  gauge(
    'observers_source_error_rate',
    'Failed dispatch passes over all passes of the last five minutes',
    (h) => h.errorRate,
  )
  const malformed: Counter<'source' | 'kind'> = new Counter({
    name: 'observers_source_malformed_entries_total',
    help: 'Malformed source entries dead-lettered since start',
    labelNames: ['source', 'kind'],
    registers: [registry],
    collect: collectFrom(
      (h) => h.malformed,
      (labels, value) => malformed.inc(labels, value),
    ),
  })
}

interface SourceLabels {
  source: string
  kind: string
}

/** A registry per worker, so several workers in one process (tests) keep separate counts. */
export function createMetrics(opts: { sample: () => Promise<GaugeSample> }): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const c = { ...changeCounters([registry]), ...actionCounters([registry]) }
  let last: { at: number; value: Promise<GaugeSample> } | undefined
  gauges(registry, () => {
    if (!last || Date.now() - last.at > sampleReuseMs) last = { at: Date.now(), value: opts.sample() }
    return last.value
  })
  return {
    registry,
    recordDispatch(events, jobs) {
      const matched = new Set(jobs.map((j) => j.delivery.event.id))
      for (const e of events) {
        c.captured.inc({ entity: e.entity, event: e.event })
        if (matched.has(e.id)) c.dispatched.inc({ entity: e.entity, event: e.event })
      }
      for (const j of jobs) c.enqueued.inc({ observer: j.delivery.observer, type: j.delivery.action.type })
    },
    recordExecution(r) {
      const labels = { observer: r.delivery.observer, type: r.delivery.action.type }
      c.actions.inc({ ...labels, outcome: r.outcome })
      c.duration.observe(labels, r.durationMs / 1000)
      if (r.outcome === 'retry') c.retries.inc()
      if (r.outcome === 'failed' && r.delivery.on_failure === 'alert') c.alerts.inc()
    },
    recordConditionError: (observer) => c.conditionErrors.inc({ observer }),
    async scrape() {
      try {
        return await registry.metrics()
      } finally {
        last = undefined
      }
    },
  }
}
