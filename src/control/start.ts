import type { Config } from '../config/config.ts'
import { coerceError, ErrorCode } from '../errors/errors.ts'
import type { Delivery } from '../event/delivery.ts'
import { type ClaimedJob, type Outcome, waitingRetentionSeconds } from '../queue/boss.ts'
import { destinationKey } from '../queue/policy.ts'
import type { Holds } from '../queue/runner.ts'
import type { Attempt } from '../queue/settle.ts'
import { type Breakers, startBreakers } from './breaker.ts'
import { type PauseState, startPauseState } from './pause.ts'
import { type RateLimits, startRateLimits, type WaitReason } from './rate-limit.ts'
import type { HoldDeps } from './refresher.ts'

/** Cluster-wide control of deliveries: pauses, circuit breakers and rate limits per destination. */
export interface Control extends Holds {
  readonly pause: PauseState
  readonly breakers: Breakers
  readonly limits: RateLimits
  /**
   * Puts a fetched job back to wait while its target is paused, its destination open or blocked,
   * or its rate_limit has no free slot.
   */
  hold(job: Attempt, delivery: Delivery): Promise<boolean>
  /**
   * Counts an attempt on its destination's breaker and ends its rate-limit slot (a 429 blocks the
   * key cluster-wide); a failure to record is logged, never thrown.
   */
  record(job: ClaimedJob, outcome: Outcome): Promise<void>
  stop(): Promise<void>
}

export interface ControlOptions extends Omit<HoldDeps, 'retentionSeconds'> {
  config: Config
  onRateWait?(observer: string, reason: WaitReason): void
}

export async function startControl(o: ControlOptions): Promise<Control> {
  const shared = { ...o, retentionSeconds: waitingRetentionSeconds }
  const started: { stop(): Promise<void> }[] = []
  const stopAll = async () => {
    for (const s of started.reverse()) await s.stop()
  }
  try {
    const pause = await startPauseState(shared)
    started.push(pause)
    const breakers = await startBreakers({
      ...shared,
      failures: o.config.breakerFailures,
      probeMs: o.config.breakerProbeMs,
    })
    started.push(breakers)
    const limits = await startRateLimits({ ...shared, ...(o.onRateWait ? { onWait: o.onRateWait } : {}) })
    started.push(limits)
    const logged = (what: string) => (e: unknown) => {
      o.log.error(
        { err: coerceError(e), code: ErrorCode.DatabaseError },
        `${ErrorCode.DatabaseError}: could not ${what}`,
      )
    }
    return {
      pause,
      breakers,
      limits,
      concerns: (d) =>
        pause.isPaused(d.observer, d.action_index) ||
        breakers.isOpen(destinationKey(d.action)) ||
        limits.concerns(d),
      hold: async (job, d) =>
        (await pause.hold(job, d.observer, d.action_index)) ||
        (await breakers.hold(job, destinationKey(d.action))) ||
        limits.hold(job, d),
      async record(job, outcome) {
        await breakers
          .record(destinationKey(job.delivery.action), outcome)
          .catch(logged('record an attempt on its breaker'))
        await limits.finish(job.id, job.delivery, outcome).catch(logged('end an attempt on its rate limit'))
      },
      stop: stopAll,
    }
  } catch (err) {
    await stopAll()
    throw err
  }
}
