import type { Config } from '../config/config.ts'
import { backlog } from '../db/queries/change-log.ts'
import { coerceError, type ObserverFileError } from '../errors/errors.ts'
import { maskUrlCredentials } from '../log/log.ts'
import type { OpsTarget } from './types.ts'

export interface Check {
  ok: boolean
  detail?: string
  problems?: Array<{ code: string; file: string; path: string; message: string }>
}

export interface Readiness {
  ready: boolean
  checks: {
    database: Check
    listener: Check
    observers: Check
    dispatch_lag: Check
    sources?: Check
    breakers?: Check
  }
}

export function describeProblems(problems: readonly ObserverFileError[]) {
  return problems.map((p) => ({ code: p.code, file: p.file, path: p.path, message: p.message }))
}

function observersCheck(worker: OpsTarget): Check {
  const rejected = worker.reloadProblems()
  if (rejected.length > 0) {
    return {
      ok: false,
      detail: `reload rejected with ${rejected.length} problem(s); the previous set of ${worker.current().observers.length} observer(s) keeps running`,
      problems: describeProblems(rejected),
    }
  }
  const { problems, observers } = worker.current()
  if (problems.length > 0) {
    return {
      ok: false,
      detail: `${problems.length} observer problem(s); ${observers.length} observer(s) running`,
      problems: describeProblems(problems),
    }
  }
  return { ok: true, detail: `${observers.length} observer(s) loaded` }
}

/** Other sources (docs/sources.md), when configured: reachable, and lag under the limit. */
async function sourcesCheck(worker: OpsTarget, config: Config): Promise<Check | undefined> {
  const others = (await worker.dispatcher.health()).filter((h) => h.kind !== 'changelog')
  if (others.length === 0) return undefined
  const bad = others.filter((h) => h.backlog === null || (h.lagSeconds ?? 0) > config.readyMaxLagSeconds)
  if (bad.length === 0) return { ok: true, detail: `${others.length} source(s) keeping up` }
  const describe = (h: (typeof others)[number]) =>
    h.backlog === null
      ? `${h.name}: unreachable (${maskUrlCredentials(h.lastError ?? 'no answer')})`
      : `${h.name}: oldest entry ${Math.round(h.lagSeconds ?? 0)} s old (limit ${config.readyMaxLagSeconds} s)`
  return { ok: false, detail: bad.map(describe).join('; ') }
}

/** Open circuit breakers, named; a destination that is down does not make this worker unready. */
function breakersCheck(worker: OpsTarget): { breakers?: Check } {
  const open = worker.breakers.open()
  if (open.length === 0) return {}
  const names = open.map((b) => `${b.destination} (since ${b.opened_at})`).join(', ')
  return { breakers: { ok: true, detail: `circuit breaker open: ${names}` } }
}

/**
 * Ready when the database answers, the listener is connected, the observers loaded without
 * problems, and the oldest undispatched change is younger than OBSERVERS_READY_MAX_LAG_SECONDS.
 */
export async function readiness(worker: OpsTarget, config: Config): Promise<Readiness> {
  let database: Check
  let dispatchLag: Check
  try {
    const b = await backlog(worker.pool)
    database = { ok: true }
    const lag = b.oldestAgeSeconds ?? 0
    dispatchLag = {
      ok: lag <= config.readyMaxLagSeconds,
      detail: `oldest undispatched change ${Math.round(lag)} s old (limit ${config.readyMaxLagSeconds} s), ${b.undispatched} waiting`,
    }
  } catch (err) {
    database = { ok: false, detail: maskUrlCredentials(coerceError(err).message) }
    dispatchLag = { ok: false, detail: 'unknown: database unreachable' }
  }
  const listener: Check = worker.dispatcher.listener.connected
    ? { ok: true }
    : { ok: false, detail: worker.dispatcher.listener.problem ?? 'listener connection is down' }
  const sources = await sourcesCheck(worker, config)
  const checks = {
    database,
    listener,
    observers: observersCheck(worker),
    dispatch_lag: dispatchLag,
    ...(sources ? { sources } : {}),
    ...breakersCheck(worker),
  }
  return { ready: Object.values(checks).every((c) => c.ok), checks }
}
