import { warnMissingTransports } from '../actions/transports.ts'
import { watchObservedTables } from '../capture/watch.ts'
import type { Config } from '../config/config.ts'
import type { Pool } from '../db/pool.ts'
import { withDemoObservers } from '../demo/demo.ts'
import { buildMatcher, type Matcher } from '../dispatch/match.ts'
import type { ObserverFileError } from '../errors/errors.ts'
import { describeError } from '../errors/errors.ts'
import { type Logger, registerSecretValues } from '../log/log.ts'
import { warnUnknownFields } from '../observers/check-fields.ts'
import { loadObservers } from '../observers/load.ts'
import { type LoadedObservers, type ObserverRegistry, startObserverRegistry } from '../observers/registry.ts'
import { secretValues } from '../ops/secrets.ts'
import { jobOf } from '../queue/policy.ts'
import { withKnownSources } from '../sources/index.ts'
import type { ChangeSource } from '../sources/types.ts'

/** The running set of observers with the matcher built from it; replaced whole on reload. */
export interface ObserverSet extends LoadedObservers {
  readonly matcher: Matcher
}

export interface ObserverSetOptions {
  countConditionError(observer: string): void
  /** Observers naming any other source are problems. */
  sources: readonly ChangeSource[]
  /** Add the sample observer of the embedded database. */
  demo: boolean
}

/**
 * The running observers of the worker: loaded now, reloaded on a change of the directory
 * (OBSERVERS_WATCH_DIR), SIGHUP or the API; their secrets are kept out of the logs.
 */
export function startObservers(
  pool: Pool,
  config: Config,
  log: Logger,
  opts: ObserverSetOptions,
): Promise<ObserverRegistry<ObserverSet>> {
  return startObserverRegistry({
    load: (strict) => loadObserverSet(pool, config, log, { ...opts, strict }),
    onApply: (set) => registerSecretValues(secretValues(config, set.observers)),
    dir: config.observersDir,
    watch: config.watchDir,
    log,
  })
}

/**
 * Loads the observer files, attaches the capture trigger to their tables (OBSERVERS_AUTO_WATCH)
 * and indexes them; logs every problem with its code and location.
 */
async function loadObserverSet(
  pool: Pool,
  config: Config,
  log: Logger,
  opts: ObserverSetOptions & {
    /** Stop at the first file problem, before watching any table (reload is all or nothing). */
    strict: boolean
  },
): Promise<ObserverSet> {
  const loadOpts = { onConditionError: oncePerObserver(log, opts.countConditionError) }
  const own = await loadObservers(config.observersDir, loadOpts)
  const loaded = withKnownSources(opts.demo ? await withDemoObservers(own, loadOpts) : own, opts.sources)
  const logProblems = (problems: readonly ObserverFileError[]) => {
    for (const p of problems) log.error({ code: p.code, file: p.file, path: p.path }, describeError(p))
  }
  if (opts.strict && loaded.problems.length > 0) {
    logProblems(loaded.problems)
    return { observers: [], problems: loaded.problems, matcher: () => [], loadedAt: new Date() }
  }
  const watched = config.autoWatch
    ? await watchObservedTables(pool, loaded.observers, config.actorSetting)
    : { observers: loaded.observers, problems: [] }
  const problems = [...loaded.problems, ...watched.problems]
  logProblems(problems)
  await warnUnknownFields(pool, watched.observers, log)
  warnMissingTransports(watched.observers, config, log)
  log.info(
    { observers: watched.observers.map((o) => o.name), problems: problems.length },
    `loaded ${watched.observers.length} observer(s)`,
  )
  return {
    observers: watched.observers,
    problems,
    matcher: buildMatcher(watched.observers, jobOf),
    loadedAt: new Date(),
  }
}

/** A condition failing on every change would flood the log: the first failure is logged, all counted. */
function oncePerObserver(log: Logger, count: (observer: string) => void) {
  const seen = new Set<string>()
  return (observer: string, err: Error & { code?: string }) => {
    count(observer)
    if (seen.has(observer)) return
    seen.add(observer)
    log.warn(
      { code: err.code, observer },
      `${describeError(err)} (observer "${observer}"; logged once, counted always)`,
    )
  }
}
