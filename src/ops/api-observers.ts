import type { Observer } from '../observers/types.ts'
import { countDeadLettersByObserver } from '../queue/stats.ts'
import { sendJson } from './http.ts'
import { describeProblems } from './readiness.ts'
import type { ObserverStatsSnapshot } from './stats.ts'
import type { RouteContext } from './types.ts'

function describe(o: Observer, stats: ObserverStatsSnapshot, inDlq: number) {
  return {
    name: o.name,
    file: o.file,
    entity: o.entity,
    events: [...o.events],
    columns: o.columns ?? null,
    condition: o.condition?.source ?? null,
    ordering: o.ordering,
    on_failure: o.onFailure,
    actions: o.actions.map((a, index) => ({ index, type: a.type })),
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
      describe(o, worker.telemetry.stats.snapshot(o.name), dlq.get(o.name) ?? 0),
    ),
    problems: describeProblems(set.problems),
    reload_problems: describeProblems(worker.reloadProblems()),
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
