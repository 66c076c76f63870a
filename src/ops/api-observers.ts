import type { PauseState } from '../control/pause.ts'
import { parseTarget, targetExists } from '../control/targets.ts'
import { HttpError, RequestCode } from '../errors/errors.ts'
import type { Observer } from '../observers/types.ts'
import { countDeadLettersByObserver } from '../queue/stats.ts'
import type { ObserverStatsSnapshot } from '../report/stats.ts'
import { sendJson } from './http.ts'
import { describeProblems } from './readiness.ts'
import type { RouteContext } from './types.ts'

function describe(o: Observer, stats: ObserverStatsSnapshot, inDlq: number, pause: PauseState) {
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
    actions: o.actions.map((a, index) => ({ index, type: a.type, paused: pause.isPaused(o.name, index) })),
    stats: { ...stats, in_dlq: inDlq },
  }
}

/** The running observers with this process's stats and the DLQ count from the database. */
export async function listObservers({ res, worker }: RouteContext) {
  const set = worker.current()
  const dlq = await countDeadLettersByObserver(worker.pool)
  sendJson(res, 200, {
    loaded_at: set.loadedAt.toISOString(),
    observers: set.observers.map((o) =>
      describe(o, worker.telemetry.stats.snapshot(o.name), dlq.get(o.name) ?? 0, worker.pause),
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
