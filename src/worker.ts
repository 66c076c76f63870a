import { actionTypes } from './actions/registry.ts'
import { watchObservedTables } from './capture/watch.ts'
import type { Config } from './config.ts'
import { type Database, openDatabase } from './db/connect.ts'
import { migrate } from './db/migrate.ts'
import { createPool, type Pool } from './db/pool.ts'
import { createDemoTable, fireDemo } from './demo.ts'
import { type Dispatcher, startDispatcher } from './dispatch/dispatcher.ts'
import { type ActionDefaults, buildMatcher, type Matcher } from './dispatch/match.ts'
import type { ObserverFileError } from './errors.ts'
import { type ExecutionReport, executeDelivery } from './execute/execute.ts'
import type { Logger } from './log.ts'
import { loadObservers } from './observers/load.ts'
import type { Observer } from './observers/types.ts'
import { type OpsServer, startOpsServer } from './ops/server.ts'
import { ensureQueues, type Queue, queueName, startQueue, work } from './queue/boss.ts'

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
  current(): ObserverSet
  reload(): Promise<ObserverSet>
  stop(): Promise<void>
}

export interface WorkerOptions {
  log: Logger
  /** Start the HTTP ops server. @defaultValue true */
  http?: boolean
  onReport?: (report: ExecutionReport) => void
}

const actionDefaults: ActionDefaults = {
  timeoutMs: (type) => actionTypes.get(type)?.defaultTimeoutMs ?? 10_000,
  destination: (action) => actionTypes.get(action.type)?.destination?.(action) ?? 'default',
}

/** Loads, watches and indexes the observers; logs every problem with its code and location. */
async function prepareObservers(pool: Pool, config: Config, log: Logger): Promise<ObserverSet> {
  const loaded = await loadObservers(config.observersDir, {
    onConditionError: oncePerObserver(log),
  })
  const watched = config.autoWatch
    ? await watchObservedTables(pool, loaded.observers, config.actorSetting)
    : { observers: loaded.observers, problems: [] }
  const problems = [...loaded.problems, ...watched.problems]
  for (const p of problems) log.error({ code: p.code, file: p.file, path: p.path }, p.message)
  for (const o of watched.observers) {
    o.actions.forEach((action, i) => {
      const missing = actionTypes.get(action.type)?.missingTransport(action, config) ?? []
      for (const variable of missing) {
        log.warn(
          { code: 'OB005', observer: o.name, action: i, variable },
          `OB005: observer "${o.name}" action ${i} (${action.type}) needs ${variable}, which is not set; its deliveries will fail`,
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

function oncePerObserver(log: Logger) {
  const seen = new Set<string>()
  return (observer: string, err: Error & { code?: string }) => {
    if (seen.has(observer)) return
    seen.add(observer)
    log.warn(
      { code: err.code, observer },
      `${err.message} (observer "${observer}"; logged once, counted always)`,
    )
  }
}

export async function startWorker(config: Config, opts: WorkerOptions): Promise<Worker> {
  const { log } = opts
  const db: Database = await openDatabase(config)
  const pool = createPool(db.url, { max: 10 })
  const totalConcurrency = [...actionTypes.keys()].reduce(
    (n, t) => n + (config.concurrencyByType[t] ?? config.concurrency),
    0,
  )
  const queue = await startQueue(db.url, { log, poolSize: Math.min(40, 4 + Math.ceil(totalConcurrency / 4)) })
  await migrate(pool)
  if (db.embedded) await createDemoTable(pool)
  await ensureQueues(queue, actionTypes.keys(), config.dlqRetentionDays)

  let set = await prepareObservers(pool, config, log)
  const dispatcher = startDispatcher({ url: db.url, pool, queue, config, log, matcher: () => set.matcher })
  const deps = { config, log, ...(opts.onReport ? { onReport: opts.onReport } : {}) }
  for (const type of actionTypes.keys()) {
    const concurrency = config.concurrencyByType[type] ?? config.concurrency
    for (const ordered of [false, true]) {
      await work(queue, queueName(type, ordered), concurrency, (job) => executeDelivery(job, deps))
    }
  }
  const worker: Worker = {
    url: db.url,
    pool,
    queue,
    dispatcher,
    ops: undefined,
    current: () => set,
    async reload() {
      set = await prepareObservers(pool, config, log)
      return set
    },
    async stop() {
      log.info('stopping: no new work, finishing in-flight actions')
      await ops?.close()
      await dispatcher.stop()
      await queue.stop({ graceful: true, timeout: config.shutdownGraceMs, close: true })
      await pool.end()
      await db.close()
      log.info('stopped')
    },
  }
  const ops = opts.http === false ? undefined : await startOpsServer(worker, config, log)
  Object.assign(worker, { ops })
  if (db.embedded) {
    log.info(`embedded Postgres at ${db.url}`)
    await fireDemo(pool)
  }
  return worker
}
