import { EventEmitter } from 'node:events'
import { actionTypes } from '../actions/registry.ts'
import type { Config } from '../config/config.ts'
import { countRateLimitWaits, registerControlGauges } from '../control/metrics.ts'
import { type Control, startControl } from '../control/start.ts'
import { statements } from '../db/statements.ts'
import { type ExecutionReport, executeDelivery } from '../execute/execute.ts'
import type { Logger } from '../log/log.ts'
import type { Tracing } from '../ops/tracing.ts'
import type { ClaimedJob } from '../queue/boss.ts'
import { type Runners, startRunners } from '../queue/runner.ts'
import type { Telemetry } from '../report/telemetry.ts'
import type { Closer } from './closer.ts'
import type { Storage } from './storage.ts'

export interface Delivering {
  readonly control: Control
  readonly runners: Runners
}

export interface DeliveryOptions {
  config: Config
  log: Logger
  telemetry: Telemetry
  tracing: Tracing | undefined
  onReport: ((report: ExecutionReport) => void) | undefined
}

/**
 * The queue → execute → report half: runners fetch jobs, control holds what is paused, behind an
 * open breaker or over a rate limit, each attempt is executed, recorded on its breaker and its
 * rate limit, and reported.
 */
export async function startDelivery(s: Storage, o: DeliveryOptions, closer: Closer): Promise<Delivering> {
  const { config, log, telemetry, tracing } = o
  const shared = { boss: s.queue, pool: s.pool, statements: statements(config.preparedStatements), log }
  // Released jobs wake their runners; jobs released before the runners start are fetched anyway.
  const released = new EventEmitter<{ queue: [string] }>()
  const control = closer.opened(
    await startControl({
      ...shared,
      config,
      listen: !s.pooled,
      wake: (q) => released.emit('queue', q),
      onRateWait: countRateLimitWaits(telemetry.metrics.registry),
    }),
    (c) => c.stop(),
  )
  registerControlGauges(telemetry.metrics.registry, control.pause, control.breakers, control.limits)
  const deps = {
    config,
    log,
    onReport: (r: ExecutionReport) => {
      telemetry.onReport(r)
      o.onReport?.(r)
    },
  }
  const attempt = (job: ClaimedJob) => executeDelivery(job, deps)
  const runners = closer.opened(
    await startRunners(actionTypes.keys(), {
      ...shared,
      holds: control,
      concurrency: (type) => config.concurrencyByType[type] ?? config.concurrency,
      listen: !s.pooled,
      pollMs: config.queuePollMs,
      handle: async (job) => {
        const outcome = await (tracing ? tracing.attempt(job, () => attempt(job)) : attempt(job))
        await control.record(job, outcome)
        return outcome
      },
    }),
    (r) => r.stop(0),
  )
  released.on('queue', (q) => runners.mark(q))
  return { control, runners }
}
