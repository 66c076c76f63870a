import { setTimeout as delay } from 'node:timers/promises'
import type { Config } from '../config/config.ts'
import { coerceError, ErrorCode } from '../errors/errors.ts'
import type { Logger } from '../log/log.ts'
import type { Pool } from './pool.ts'
import { type Backlog, backlog, pruneChanges } from './queries/change-log.ts'
import { pruneDeliveries } from './queries/deliveries.ts'

export interface HousekeepingDeps {
  pool: Pool
  config: Config
  log: Logger
  /** Only the dispatcher prunes, so several workers do not delete the same rows at once. */
  isLeader(): boolean
}

export interface HousekeepingPass {
  pruned: number
  backlog: Backlog
}

export interface Housekeeping {
  runOnce(): Promise<HousekeepingPass>
  stop(): Promise<void>
}

function warnAboutBacklog(b: Backlog, config: Config, log: Logger): void {
  const age = b.oldestAgeSeconds ?? 0
  if (b.undispatched <= config.backlogWarn && age <= config.lagWarnSeconds) return
  log.warn(
    {
      undispatched: b.undispatched,
      oldest_age_seconds: Math.round(age),
      backlog_warn: config.backlogWarn,
      lag_warn_seconds: config.lagWarnSeconds,
    },
    `change-log backlog: ${b.undispatched} undispatched change(s), oldest ${Math.round(age)} s old; dispatch is not keeping up`,
  )
}

/**
 * Every housekeepingIntervalMs: warns when the change log is not being dispatched fast enough
 * (OBSERVERS_BACKLOG_WARN, OBSERVERS_LAG_WARN_SECONDS) and deletes dispatched rows, and the
 * delivery record, older than OBSERVERS_RETENTION_DAYS in batches.
 */
export function startHousekeeping(deps: HousekeepingDeps): Housekeeping {
  const { pool, config, log } = deps
  const stopping = new AbortController()
  const runOnce = async (): Promise<HousekeepingPass> => {
    const b = await backlog(pool)
    warnAboutBacklog(b, config, log)
    const pruned = deps.isLeader() ? await pruneChanges(pool, config.retentionDays) : 0
    // The delivery record lasts as long as the changes it is about.
    if (deps.isLeader()) await pruneDeliveries(pool, config.retentionDays)
    if (pruned > 0) {
      log.info(
        { pruned, retention_days: config.retentionDays },
        `deleted ${pruned} dispatched change(s) past retention`,
      )
    }
    return { pruned, backlog: b }
  }
  const loop = async () => {
    while (!stopping.signal.aborted) {
      try {
        await runOnce()
      } catch (err) {
        log.error(
          { code: ErrorCode.DatabaseError, error: coerceError(err).message },
          `${ErrorCode.DatabaseError}: housekeeping failed; will try again`,
        )
      }
      await delay(config.housekeepingIntervalMs, undefined, { signal: stopping.signal }).catch(() => {})
    }
  }
  const running = loop()
  return {
    runOnce,
    async stop() {
      stopping.abort()
      await running
    },
  }
}
