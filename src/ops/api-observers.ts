import type { Breakers } from '../control/breaker.ts'
import type { PauseState } from '../control/pause.ts'
import { parseTarget, targetExists } from '../control/targets.ts'
import type { Pool } from '../db/pool.ts'
import { type ObserverActivity, type ObserverFigures, observerActivity } from '../db/queries/deliveries.ts'
import { HttpError, RequestCode } from '../errors/errors.ts'
import type { Observer } from '../observers/types.ts'
import { destinationKey } from '../queue/policy.ts'
import { countDeadLettersByObserver } from '../queue/stats.ts'
import { sendJson } from './http.ts'
import { describeProblems } from './readiness.ts'
import type { RouteContext } from './types.ts'

/** The window of the cluster-wide activity each observer reports. */
export const activityWindowSeconds = 3600
export const idle: ObserverFigures = {
  delivered: 0,
  retrying: 0,
  failed: 0,
  p50_ms: null,
  p95_ms: null,
  started: 0,
  retried: 0,
  last_failure: null,
}

/** The `activity` object of both observer routes, with the window it covers. */
export function describeActivity(f: ObserverFigures): ObserverActivity & { window_seconds: number } {
  const { delivered, retrying, failed, p50_ms, p95_ms } = f
  return { window_seconds: activityWindowSeconds, delivered, retrying, failed, p50_ms, p95_ms }
}

/**
 * The `stats` object: every worker's figures over the activity window, read from the record
 * rather than kept by each process, so any worker answers alike and a restart resets nothing.
 */
function describeStats(f: ObserverFigures, inDlq: number) {
  return {
    matched: f.started,
    succeeded: f.delivered,
    failed: f.failed,
    retried: f.retried,
    last_error: f.last_failure,
    p50_ms: f.p50_ms,
    p95_ms: f.p95_ms,
    in_dlq: inDlq,
  }
}

/**
 * The activity query scans the hour's deliveries (about 1.5 s at 400 000 an hour), so each
 * worker runs it at most once per `activityMaxAgeMs`, however many consoles poll.
 */
const activityMaxAgeMs = 10_000
const activityCache = new WeakMap<Pool, { at: number; rows: Promise<Map<string, ObserverFigures>> }>()

function recentActivity(pool: Pool): Promise<Map<string, ObserverFigures>> {
  const hit = activityCache.get(pool)
  if (hit && performance.now() - hit.at < activityMaxAgeMs) return hit.rows
  const rows = observerActivity(pool, activityWindowSeconds)
  activityCache.set(pool, { at: performance.now(), rows })
  rows.catch(() => activityCache.delete(pool))
  return rows
}

interface Seen {
  inDlq: number
  figures: ObserverFigures
  pause: PauseState
  breakers: Breakers
}

function describe(o: Observer, seen: Seen) {
  const { figures, inDlq, pause } = seen
  const open = new Set(seen.breakers.open().map((b) => b.destination))
  return {
    name: o.name,
    paused: pause.paused().has(o.name),
    file: o.file,
    entity: o.entity,
    events: [...o.events],
    columns: o.columns ?? null,
    condition: o.condition?.source ?? null,
    ordering: o.ordering,
    on_failure: o.onFailure,
    actions: o.actions.map((a, index) => {
      // The key breakers and max_concurrency share (src/queue/policy.ts destinationKey).
      const destination = destinationKey(a)
      return {
        index,
        type: a.type,
        paused: pause.isPaused(o.name, index),
        destination,
        breaker_open: open.has(destination),
      }
    }),
    stats: describeStats(figures, inDlq),
    activity: describeActivity(figures),
  }
}

/**
 * The running observers with, from the database, the DLQ count and every worker's activity and
 * stats over the last hour (at most 10 s old): the same answer from any worker.
 */
export async function listObservers({ res, worker }: RouteContext) {
  const set = worker.current()
  const [dlq, activity] = await Promise.all([
    countDeadLettersByObserver(worker.pool),
    recentActivity(worker.pool),
  ])
  sendJson(res, 200, {
    loaded_at: set.loadedAt.toISOString(),
    observers: set.observers.map((o) =>
      describe(o, {
        inDlq: dlq.get(o.name) ?? 0,
        figures: activity.get(o.name) ?? idle,
        pause: worker.pause,
        breakers: worker.breakers,
      }),
    ),
    problems: describeProblems(set.problems),
    reload_problems: describeProblems(worker.reloadProblems()),
    breakers: worker.breakers.open(),
  })
}

/** 200 when the new set is running; 422 with every problem when it was rejected as a whole. */
export async function reloadObservers({ res, worker }: RouteContext) {
  const result = await worker.reload()
  sendJson(res, result.applied ? 200 : 422, {
    applied: result.applied,
    observers: result.set.observers.map((o) => o.name),
    problems: describeProblems(result.problems),
  })
}

/**
 * Pauses or resumes an observer (`name`) or one of its actions (`name#index`) in every worker:
 * the state is a row of observers.paused, read by each worker. This one applies it at once.
 */
export function setPaused(paused: boolean) {
  return async ({ res, worker, params }: RouteContext) => {
    const text = params[0] ?? ''
    const target = parseTarget(text)
    if (!target || !targetExists(target, worker.current().observers)) {
      throw new HttpError(
        404,
        RequestCode.NotFound,
        `no running observer or action "${text}" (name or name#index)`,
      )
    }
    const fn = paused ? 'observers.pause_observer' : 'observers.resume_observer'
    const { rows } = await worker.pool.query<{ changed: boolean }>(`select ${fn}($1) as changed`, [text])
    await worker.pause.refresh()
    sendJson(res, 200, { target: text, paused, changed: rows[0]?.changed ?? false })
  }
}

/** Closes a destination's circuit breaker by hand, in every worker: its waiting deliveries run. */
export async function closeBreaker({ res, worker, params }: RouteContext) {
  const destination = params[0] ?? ''
  const { rows } = await worker.pool.query<{ closed: boolean }>(
    'select observers.close_breaker($1) as closed',
    [destination],
  )
  if (!rows[0]?.closed)
    throw new HttpError(404, RequestCode.NotFound, `no circuit breaker for "${destination}"`)
  await worker.breakers.refresh()
  sendJson(res, 200, { destination, closed: true })
}
