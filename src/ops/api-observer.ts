import { countDeliveriesByOutcome, observerActivity } from '../db/queries/deliveries.ts'
import { HttpError, RequestCode } from '../errors/errors.ts'
import type { ActionConfig, Observer } from '../observers/types.ts'
import { destinationKey } from '../queue/policy.ts'
import { countDeadLettersByObserver, observerJobs } from '../queue/stats.ts'
import { activityWindowSeconds, describeActivity, idle } from './api-observers.ts'
import { sendJson } from './http.ts'
import type { RouteContext } from './types.ts'

interface DestinationState {
  failures: number
  opened_at: Date | null
  blocked_until: Date | null
}

/** Breaker and 429 state of these keys, read from the database (not this worker's copy). */
async function destinationStates(ctx: RouteContext, keys: string[]): Promise<Map<string, DestinationState>> {
  const { rows } = await ctx.worker.pool.query<DestinationState & { key: string }>(
    `select k.key, b.failures, b.opened_at, l.blocked_until
       from unnest($1::text[]) as k(key)
       left join observers.breakers b on b.destination = k.key
       left join observers.rate_limits l on l.key = k.key and l.blocked_until > now()`,
    [keys],
  )
  return new Map(rows.map((r) => [r.key, r]))
}

const destinationOf = (a: ActionConfig) => destinationKey(a)

function describeAction(
  o: Observer,
  a: ActionConfig,
  index: number,
  ctx: RouteContext,
  states: Map<string, DestinationState>,
) {
  const destination = destinationOf(a)
  const s = states.get(destination)
  const rateKey = a.rate_limit?.key === undefined ? destination : `${a.type}:${a.rate_limit.key}`
  return {
    index,
    type: a.type,
    paused: ctx.worker.pause.isPaused(o.name, index),
    destination,
    max_concurrency: a.max_concurrency ?? null,
    rate_limit: a.rate_limit ? { ...a.rate_limit, key: rateKey } : null,
    breaker: s?.failures
      ? { failures: s.failures, open: s.opened_at !== null, opened_at: s.opened_at?.toISOString() ?? null }
      : null,
    blocked_until: (states.get(rateKey) ?? s)?.blocked_until?.toISOString() ?? null,
  }
}

/**
 * GET /api/observers/:name: one running observer with cluster-wide state read from the database:
 * its jobs by state, its delivery record by outcome, attempt durations, pause, breakers and limits.
 */
export async function showObserver(ctx: RouteContext) {
  const name = ctx.params[0] ?? ''
  const o = ctx.worker.current().observers.find((x) => x.name === name)
  if (!o) throw new HttpError(404, RequestCode.NotFound, `no running observer "${name}"`)
  const keys = o.actions.flatMap((a) => [
    destinationOf(a),
    ...(a.rate_limit?.key === undefined ? [] : [`${a.type}:${a.rate_limit.key}`]),
  ])
  const [jobs, deliveries, activity, dlq, states] = await Promise.all([
    observerJobs(ctx.worker.pool, name),
    countDeliveriesByOutcome(ctx.worker.pool, name),
    observerActivity(ctx.worker.pool, activityWindowSeconds, name),
    countDeadLettersByObserver(ctx.worker.pool),
    destinationStates(ctx, keys),
  ])
  sendJson(ctx.res, 200, {
    name: o.name,
    file: o.file,
    entity: o.entity,
    events: [...o.events],
    ordering: o.ordering,
    on_failure: o.onFailure,
    paused: ctx.worker.pause.paused().has(o.name),
    actions: o.actions.map((a, i) => describeAction(o, a, i, ctx, states)),
    jobs,
    deliveries,
    in_dlq: dlq.get(o.name) ?? 0,
    activity: describeActivity(activity.get(name) ?? idle),
  })
}
