import type { Delivery } from '../event/delivery.ts'
import type { RateLimit } from '../observers/types.ts'
import type { Outcome } from '../queue/boss.ts'
import { holdForRate } from '../queue/pgboss-sql.ts'
import { destinationKey, jobExpirySeconds } from '../queue/policy.ts'
import type { Attempt } from '../queue/settle.ts'
import { renderString, templateScope } from '../templates/render.ts'
import { type HoldDeps, startRefresher } from './refresher.ts'

/** Why a delivery waited: over its rate_limit, or its destination answered 429 with Retry-After. */
export type WaitReason = 'rate' | 'blocked'

export interface BlockedKey {
  key: string
  until: string
}

export interface RateLimits {
  /** Whether `hold` may keep the delivery: it has a rate_limit, or its key was blocked at the last read. */
  concerns(delivery: Delivery): boolean
  /**
   * Lets a fetched job go (taking a slot of its rate_limit, if it has one) or puts it back to
   * wait, without spending an attempt, until its key has a free slot or is no longer blocked.
   */
  hold(job: Attempt, delivery: Delivery): Promise<boolean>
  /** Ends the attempt's slot, and blocks its key cluster-wide on a 429 with Retry-After. */
  finish(jobId: string, delivery: Delivery, outcome: Outcome): Promise<void>
  /** Keys blocked by a destination's Retry-After, as of the last read. */
  blocked(): readonly BlockedKey[]
  refresh(): Promise<void>
  stop(): Promise<void>
}

export interface RateLimitOptions extends HoldDeps {
  onWait?(observer: string, reason: WaitReason): void
}

/** The slot of a delivery that has to wait longer than this is not worth a timer of its own. */
const maxWakeMs = 60_000

/**
 * The bucket a delivery counts in: its action type and its rendered `rate_limit.key`, or its
 * destination (as for max_concurrency and the circuit breaker). A key that fails to render
 * falls back to the destination, so the delivery still waits its turn there.
 */
export function rateKey(d: Delivery): string {
  const destination = destinationKey(d.action)
  const key = d.action.rate_limit?.key
  if (key === undefined) return destination
  try {
    return `${d.action.type}:${renderString(key, templateScope(d, 1))}`
  } catch {
    return destination
  }
}

/** A rate_limit as a number of deliveries per period. */
export function ratePeriod(limit: RateLimit): { limit: number; periodMs: number } {
  return limit.per_second !== undefined
    ? { limit: limit.per_second, periodMs: 1_000 }
    : { limit: limit.per_minute ?? 1, periodMs: 60_000 }
}

export async function startRateLimits(o: RateLimitOptions): Promise<RateLimits> {
  let blockedKeys = new Map<string, Date>()
  const refresher = await startRefresher(
    async () => {
      const { rows } = await o.pool.query<{ key: string; blocked_until: Date }>(
        'select key, blocked_until from observers.rate_limits where blocked_until > now()',
      )
      blockedKeys = new Map(rows.map((r) => [r.key, r.blocked_until]))
    },
    { ...o, what: 'the blocked destinations' },
  )
  await refresher.refresh()
  const blockedUntil = (key: string) => {
    const until = blockedKeys.get(key)
    return until && until.getTime() > Date.now() ? until : undefined
  }
  // The slot each running attempt took, by job id, to end it when the attempt ends.
  const grants = new Map<string, string>()

  const wait = async (job: Attempt, key: string, until: Date, reason: WaitReason) => {
    const { rows } = await o.statements.run(o.pool, holdForRate, [
      job.queue,
      job.id,
      job.retryCount,
      until.toISOString(),
      o.retentionSeconds,
      key,
    ])
    if (rows.length !== 1) return false
    o.onWait?.(job.data.observer, reason)
    const ms = until.getTime() - Date.now()
    if (ms < maxWakeMs) setTimeout(() => o.wake(job.queue), Math.max(0, ms)).unref()
    return true
  }

  const take = async (job: Attempt, d: Delivery, key: string, limit: RateLimit) => {
    const { limit: n, periodMs } = ratePeriod(limit)
    // Held as long as pg-boss lets the attempt run, so a crashed worker's slot frees with its job.
    const holdMs = jobExpirySeconds(d.action) * 1000
    const { rows } = await o.pool.query<{
      grant_id: string | null
      wait_until: Date | null
      blocked: boolean
    }>(
      `select s.grant_id, s.wait_until, coalesce(l.blocked_until > now(), false) as blocked
         from observers.take_rate_slot($1, $2, $3, $4) s
         left join observers.rate_limits l on l.key = $1`,
      [key, n, periodMs, holdMs],
    )
    const r = rows[0]
    if (r?.grant_id) {
      grants.set(job.id, r.grant_id)
      return false
    }
    return wait(job, key, r?.wait_until ?? new Date(), r?.blocked ? 'blocked' : 'rate')
  }

  return {
    concerns: (d) => d.action.rate_limit !== undefined || blockedUntil(rateKey(d)) !== undefined,
    async hold(job, d) {
      const key = rateKey(d)
      if (d.action.rate_limit) return take(job, d, key, d.action.rate_limit)
      const until = blockedUntil(key)
      return until !== undefined && wait(job, key, until, 'blocked')
    },
    async finish(jobId, d, outcome) {
      const grant = grants.get(jobId)
      if (grant !== undefined) {
        grants.delete(jobId)
        await o.pool.query('select observers.end_rate_grant($1)', [grant])
      }
      if (outcome.kind !== 'retry' && outcome.kind !== 'failed') return
      if (outcome.record.status !== 429 || outcome.retryAfterMs === undefined) return
      const key = rateKey(d)
      // Capped as the delivery's own retry is, so a destination cannot park a key for days.
      const ms = Math.min(outcome.retryAfterMs, d.retry.max_delay_ms)
      await o.pool.query(
        `select observers.block_destination($1, now() + $2::int * interval '1 millisecond')`,
        [key, ms],
      )
      o.log.warn(
        { key, retry_after_ms: ms },
        `${key} answered 429: every worker holds its deliveries ${ms} ms`,
      )
      await refresher.refresh()
    },
    blocked: () =>
      [...blockedKeys]
        .filter(([, until]) => until.getTime() > Date.now())
        .map(([key, until]) => ({ key, until: until.toISOString() })),
    refresh: refresher.refresh,
    stop: refresher.stop,
  }
}
