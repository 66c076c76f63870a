import type pg from 'pg'
import type { Config } from '../config/config.ts'
import type { Statements } from '../db/statements.ts'
import { coerceError, ErrorCode } from '../errors/errors.ts'
import type { Delivery } from '../event/delivery.ts'
import type { Logger } from '../log/log.ts'
import { type Outcome, type Queue, waitingRetentionSeconds } from '../queue/boss.ts'
import { destinationKey } from '../queue/policy.ts'
import type { Attempt } from '../queue/settle.ts'
import { type Breakers, startBreakers } from './breaker.ts'
import { type PauseState, startPauseState } from './pause.ts'

/** Cluster-wide control of deliveries: pauses, and circuit breakers per destination. */
export interface Control {
  readonly pause: PauseState
  readonly breakers: Breakers
  /** Puts a fetched job back to wait while its target is paused or its destination open. */
  hold(job: Attempt, delivery: Delivery): Promise<boolean>
  /** Counts an attempt on its destination's breaker; a failure to record is logged, never thrown. */
  record(delivery: Delivery, outcome: Outcome): Promise<void>
  stop(): Promise<void>
}

export interface ControlOptions {
  boss: Queue
  pool: pg.Pool
  statements: Statements
  config: Config
  log: Logger
  /** LISTEN for changes made by other workers; false behind a transaction-mode pooler. */
  listen: boolean
  /** Wakes the runners of queues whose held jobs were released. */
  wake(queue: string): void
}

export async function startControl(o: ControlOptions): Promise<Control> {
  const shared = { ...o, retentionSeconds: waitingRetentionSeconds }
  const pause = await startPauseState(shared)
  const breakers = await startBreakers({
    ...shared,
    failures: o.config.breakerFailures,
    probeMs: o.config.breakerProbeMs,
  }).catch(async (err: unknown) => {
    await pause.stop()
    throw err
  })
  return {
    pause,
    breakers,
    hold: async (job, d) =>
      (await pause.hold(job, d.observer, d.action_index)) || breakers.hold(job, destinationKey(d.action)),
    record: (d, outcome) =>
      breakers.record(destinationKey(d.action), outcome).catch((e: unknown) => {
        o.log.error(
          { err: coerceError(e), code: ErrorCode.DatabaseError },
          `${ErrorCode.DatabaseError}: could not record an attempt on its breaker`,
        )
      }),
    async stop() {
      await pause.stop()
      await breakers.stop()
    },
  }
}
