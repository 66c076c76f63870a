import { closeConnections } from './actions/connections.ts'
import { configureHttp } from './actions/http.ts'
import { actionTypes } from './actions/registry.ts'
import { watchObservedTables } from './capture/watch.ts'
import type { Config } from './config.ts'
import { type Breakers, startBreakers } from './control/breaker.ts'
import { countRateLimitWaits, registerControlGauges } from './control/metrics.ts'
import { type PauseState, startPauseState } from './control/pause.ts'
import { type RateLimits, startRateLimits } from './control/rate-limit.ts'
import { type Database, openDatabase, sharesSessions } from './db/connect.ts'
import { checkSchema, migrate } from './db/migrate.ts'
import { createPool, type Pool } from './db/pool.ts'
import { statements } from './db/statements.ts'
import type { Delivery } from './delivery.ts'
import { createDemoTable, fireDemo, withDemoObservers } from './demo.ts'
import { actionDefaults } from './dispatch/action-defaults.ts'
import { type Dispatcher, startDispatcher } from './dispatch/dispatcher.ts'
import { buildMatcher, type Matcher } from './dispatch/match.ts'
import { AppError, ConfigError, coerceError, ErrorCode, type ObserverFileError } from './errors.ts'
import { type ExecutionReport, executeDelivery } from './execute/execute.ts'
import { startHousekeeping } from './housekeeping.ts'
import { type Logger, registerSecretValues } from './log.ts'
import { warnUnknownFields } from './observers/check-fields.ts'
import { loadObservers } from './observers/load.ts'
import type { Observer } from './observers/types.ts'
import { watchDir } from './observers/watch-dir.ts'
import { assertSafeBinding } from './ops/auth.ts'
import { startTracing } from './ops/otlp.ts'
import { secretValues } from './ops/secrets.ts'
import { type OpsServer, startOpsServer } from './ops/server.ts'
import { createTelemetry, type Telemetry } from './ops/telemetry.ts'
import {
  type ClaimedJob,
  ensureQueues,
  type Queue,
  startQueue,
  waitingRetentionSeconds,
} from './queue/boss.ts'
import { type Runners, startRunners } from './queue/runner.ts'
import { createSources, withKnownSources } from './sources/index.ts'
import type { ChangeSource } from './sources/types.ts'

/** The running set of observers; replaced whole on reload. */
export interface ObserverSet {
  observers: readonly Observer[]
  problems: readonly ObserverFileError[]
  matcher: Matcher
  loadedAt: Date
}

export interface Worker {
  readonly url: string
  readonly pool: Pool
  readonly queue: Queue
  readonly dispatcher: Dispatcher
  readonly ops: OpsServer | undefined
  readonly telemetry: Telemetry
  /** What is paused, cluster-wide (observers.paused). */
  readonly pause: PauseState
  /** Circuit breakers per destination, cluster-wide (observers.breakers). */
  readonly breakers: Breakers
  /** Rate limits and destinations blocked by a 429, cluster-wide (observers.rate_limits). */
  readonly limits: RateLimits
  current(): ObserverSet
  /** All or nothing: a new set with any problem is rejected and the running set stays. */
  reload(): Promise<ReloadResult>
  /** The problems of the last reload when it was rejected; empty once a reload applies. */
  reloadProblems(): readonly ObserverFileError[]
  stop(): Promise<void>
}

export interface ReloadResult {
  applied: boolean
  /** The set running after the reload. */
  set: ObserverSet
  problems: readonly ObserverFileError[]
}

export interface WorkerOptions {
  log: Logger
  /** Start the HTTP ops server. @defaultValue true */
  http?: boolean
  onReport?: (report: ExecutionReport) => void
}

/** The destination a delivery's circuit breaker is keyed on, as max_concurrency's group is. */
function destinationOf(d: Delivery): string {
  return `${d.action.type}:${actionDefaults.destination(d.action)}`
}

interface PrepareOptions {
  /** Stop at the first file problem, before watching any table (reload is all or nothing). */
  strict: boolean
  countConditionError(observer: string): void
  /** Observers naming any other source are problems. */
  sources: readonly ChangeSource[]
  /** Add the sample observer of the embedded database. */
  demo: boolean
}

/** Loads, watches and indexes the observers; logs every problem with its code and location. */
async function prepareObservers(
  pool: Pool,
  config: Config,
  log: Logger,
  opts: PrepareOptions,
): Promise<ObserverSet> {
  const loadOpts = { onConditionError: oncePerObserver(log, opts.countConditionError) }
  const own = await loadObservers(config.observersDir, loadOpts)
  const loaded = withKnownSources(opts.demo ? await withDemoObservers(own, loadOpts) : own, opts.sources)
  const logProblems = (problems: readonly ObserverFileError[]) => {
    for (const p of problems) log.error({ code: p.code, file: p.file, path: p.path }, p.message)
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
  for (const o of watched.observers) {
    o.actions.forEach((action, i) => {
      const missing = actionTypes.get(action.type)?.missingTransport(action, config) ?? []
      for (const variable of missing) {
        log.warn(
          { code: 'OB005', observer: o.name, action: i, variable },
          `OB005: observer "${o.name}" action ${i} (${action.type}) needs ${variable}, which is not set; its deliveries will fail (set it and restart the worker: a reload does not re-read the environment)`,
        )
      }
    })
  }
  log.info(
    { observers: watched.observers.map((o) => o.name), problems: problems.length },
    `loaded ${watched.observers.length} observer(s)`,
  )
  return {
    observers: watched.observers,
    problems,
    matcher: buildMatcher(watched.observers, actionDefaults),
    loadedAt: new Date(),
  }
}

function oncePerObserver(log: Logger, count: (observer: string) => void) {
  const seen = new Set<string>()
  return (observer: string, err: Error & { code?: string }) => {
    count(observer)
    if (seen.has(observer)) return
    seen.add(observer)
    log.warn(
      { code: err.code, observer },
      `${err.message} (observer "${observer}"; logged once, counted always)`,
    )
  }
}

interface ObserverState {
  set: ObserverSet
  rejected: readonly ObserverFileError[]
}

async function applyReload(
  state: ObserverState,
  load: () => Promise<ObserverSet>,
  config: Config,
  log: Logger,
): Promise<ReloadResult> {
  const next = await load()
  if (next.problems.length > 0) {
    state.rejected = next.problems
    log.error(
      { code: ErrorCode.InvalidConfig, problems: next.problems.length },
      `${ErrorCode.InvalidConfig}: reload rejected: ${next.problems.length} problem(s) in ${config.observersDir}; keeping the ${state.set.observers.length} running observer(s)`,
    )
    return { applied: false, set: state.set, problems: next.problems }
  }
  state.set = next
  state.rejected = []
  registerSecretValues(secretValues(config, next.observers))
  return { applied: true, set: next, problems: [] }
}

/** Serialises reloads (SIGHUP, API, directory changes) so two never interleave. */
function serialised<T>(fn: () => Promise<T>): () => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve()
  return () => {
    const run = tail.then(fn)
    tail = run.catch(() => {})
    return run
  }
}

/**
 * Read-only checks of a database the worker did not start: its schema is migrated, and LISTEN
 * and the session advisory locks get a session of their own. True when DATABASE_URL goes
 * through a transaction-mode pooler.
 */
async function checkConnections(pool: Pool, db: Database, log: Logger): Promise<boolean> {
  await checkSchema(pool, log)
  const pooled = await sharesSessions(db.url)
  if (pooled && db.directUrl === db.url) {
    throw new ConfigError(
      ErrorCode.InvalidConfig,
      "DATABASE_URL goes through a transaction-mode pooler (two connections shared one server session), but LISTEN and the dispatcher's session advisory locks need a session of their own: set DATABASE_DIRECT_URL to a direct connection to the same database (or the pooler's session-mode address)",
    )
  }
  if (pooled)
    log.info('DATABASE_URL is a transaction-mode pooler: LISTEN and leadership use DATABASE_DIRECT_URL')
  return pooled
}

/** pg-boss refuses to start on a schema it would have to create or migrate; say what to run. */
function explainQueueSchema(err: unknown): never {
  const message = coerceError(err).message
  if (/pg-boss is not installed|pg-boss database requires migrations/.test(message)) {
    throw new AppError(
      ErrorCode.DatabaseError,
      `the queue schema (pgboss) is missing or at another version (${message}): run \`observers migrate\` (npm run migrate, the Procfile's release phase) with a role that may create objects, then start the worker`,
      { cause: err },
    )
  }
  throw err
}

export async function startWorker(config: Config, opts: WorkerOptions): Promise<Worker> {
  const { log } = opts
  if (opts.http !== false) assertSafeBinding(config)
  configureHttp({ blockPrivateNetworks: config.blockPrivateNetworks })
  // What start-up has opened so far, closed again (last first) if a later step fails.
  const undo: Array<() => Promise<unknown>> = []
  let dispatcherRef: Dispatcher | undefined
  try {
    const db: Database = await openDatabase(config, (msg) => log.info(msg))
    undo.push(() => db.close())
    const pool = createPool(db.url, { max: Math.max(2, Math.ceil(config.dbPoolSize / 2)) })
    undo.push(() => pool.end())
    // Against DATABASE_URL the worker runs no DDL: `observers migrate` (the release phase) does.
    const pooled = db.embedded ? false : await checkConnections(pool, db, log)
    const queue = await startQueue(db.url, {
      log,
      poolSize: config.dbPoolSize,
      migrate: db.embedded !== undefined,
    }).catch(explainQueueSchema)
    undo.push(() => queue.stop({ graceful: false, close: true }))
    if (db.embedded) {
      await migrate(pool)
      await createDemoTable(pool)
    }
    await ensureQueues(queue, actionTypes.keys(), config.dlqRetentionDays)

    const telemetry = createTelemetry(pool, async () => (dispatcherRef ? dispatcherRef.health() : []))
    const tracing = await startTracing(config.env, log)
    if (tracing) undo.push(() => tracing.shutdown())
    const sources = createSources(config)
    const load = (strict: boolean) =>
      prepareObservers(pool, config, log, {
        strict,
        countConditionError: telemetry.onConditionError,
        sources,
        demo: db.embedded !== undefined,
      })
    const state: ObserverState = { set: await load(false), rejected: [] }
    registerSecretValues(secretValues(config, state.set.observers))
    const reload = serialised(() => applyReload(state, () => load(true), config, log))
    const dispatcher = startDispatcher({
      url: db.directUrl,
      pool,
      queue,
      config,
      log,
      matcher: tracing ? () => tracing.matcher(state.set.matcher) : () => state.set.matcher,
      sources,
      onDispatched: tracing
        ? (events, jobs) => {
            telemetry.onDispatched(events, jobs)
            tracing.onDispatched(events)
          }
        : telemetry.onDispatched,
    })
    dispatcherRef = dispatcher
    undo.push(() => dispatcher.stop())
    const onReport = (r: ExecutionReport) => {
      telemetry.onReport(r)
      opts.onReport?.(r)
    }
    const deps = { config, log, onReport }
    const runStatements = statements(config.preparedStatements)
    let runnersRef: Runners | undefined
    const pause = await startPauseState({
      boss: queue,
      pool,
      statements: runStatements,
      log,
      listen: !pooled,
      wake: (q) => runnersRef?.mark(q),
      retentionSeconds: waitingRetentionSeconds,
    })
    undo.push(() => pause.stop())
    const breakers = await startBreakers({
      boss: queue,
      pool,
      statements: runStatements,
      log,
      listen: !pooled,
      failures: config.breakerFailures,
      probeMs: config.breakerProbeMs,
      retentionSeconds: waitingRetentionSeconds,
      wake: (q) => runnersRef?.mark(q),
    })
    undo.push(() => breakers.stop())
    const limits = await startRateLimits({
      boss: queue,
      pool,
      statements: runStatements,
      log,
      listen: !pooled,
      retentionSeconds: waitingRetentionSeconds,
      wake: (q) => runnersRef?.mark(q),
      onWait: countRateLimitWaits(telemetry.metrics.registry),
    })
    undo.push(() => limits.stop())
    registerControlGauges(telemetry.metrics.registry, pause, breakers, limits)
    const execute = async (job: ClaimedJob) => {
      const outcome = await (tracing
        ? tracing.attempt(job, () => executeDelivery(job, deps))
        : executeDelivery(job, deps))
      await breakers.record(destinationOf(job.delivery), outcome).catch((e: unknown) => {
        log.error({ err: coerceError(e), code: 'OB009' }, 'OB009: could not record an attempt on its breaker')
      })
      await limits.finish(job.id, job.delivery, outcome).catch((e: unknown) => {
        log.error({ err: coerceError(e), code: 'OB009' }, 'OB009: could not end an attempt on its rate limit')
      })
      return outcome
    }
    const runners = await startRunners(actionTypes.keys(), {
      boss: queue,
      pool,
      statements: runStatements,
      log,
      hold: async (job, d) =>
        (await pause.hold(job, d.observer, d.action_index)) ||
        (await breakers.hold(job, destinationOf(d))) ||
        limits.hold(job, d),
      concurrency: (type) => config.concurrencyByType[type] ?? config.concurrency,
      listen: !pooled,
      handle: execute,
    })
    runnersRef = runners
    const stopRunners = (graceMs: number) => runners.stop(graceMs)
    undo.push(() => stopRunners(0))
    const worker: Worker = {
      url: db.url,
      pool,
      queue,
      dispatcher,
      ops: undefined,
      telemetry,
      pause,
      breakers,
      limits,
      current: () => state.set,
      reload,
      reloadProblems: () => state.rejected,
      async stop() {
        log.info('stopping: no new work, finishing in-flight actions')
        await ops?.close()
        dirWatcher?.close()
        await housekeeping.stop()
        await dispatcher.stop()
        await stopRunners(config.shutdownGraceMs)
        await pause.stop()
        await breakers.stop()
        await limits.stop()
        await queue.stop({ graceful: true, timeout: config.shutdownGraceMs, close: true })
        await tracing?.shutdown()
        await closeConnections()
        await pool.end()
        await db.close()
        log.info('stopped')
      },
    }
    const onDirChange = () => void reload().catch((err) => log.error({ err }, 'reload failed'))
    const dirWatcher = config.watchDir ? watchDir(config.observersDir, onDirChange, log) : undefined
    const housekeeping = startHousekeeping({ pool, config, log, isLeader: () => dispatcher.listener.leader })
    undo.push(async () => {
      dirWatcher?.close()
      await housekeeping.stop()
    })
    const ops = opts.http === false ? undefined : await startOpsServer(worker, config, log)
    Object.assign(worker, { ops })
    if (db.embedded) {
      log.info(`embedded Postgres at ${db.url}`)
      await fireDemo(pool)
    }
    return worker
  } catch (err) {
    for (const close of undo.reverse()) await close().catch(() => {})
    throw err
  }
}
