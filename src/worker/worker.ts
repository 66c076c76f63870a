import { closeConnections } from '../actions/connections.ts'
import { configureHttp } from '../actions/http.ts'
import type { Config } from '../config/config.ts'
import { startHousekeeping } from '../db/housekeeping.ts'
import { fireDemo } from '../demo/demo.ts'
import { type Dispatcher, startDispatcher } from '../dispatch/dispatcher.ts'
import type { ExecutionReport } from '../execute/execute.ts'
import type { Logger } from '../log/log.ts'
import type { ReloadResult } from '../observers/registry.ts'
import { assertSafeBinding } from '../ops/auth.ts'
import { startTracing } from '../ops/otlp.ts'
import { type OpsServer, startOpsServer } from '../ops/server.ts'
import type { OpsTarget } from '../ops/types.ts'
import { registerSourceGauges } from '../report/metrics.ts'
import { createTelemetry } from '../report/telemetry.ts'
import { createSources } from '../sources/index.ts'
import { createCloser } from './closer.ts'
import { startDelivery } from './delivery.ts'
import { type ObserverSet, startObservers } from './observer-set.ts'
import { openStorage } from './storage.ts'

export type { ObserverSet } from './observer-set.ts'

export interface Worker extends OpsTarget {
  readonly url: string
  readonly dispatcher: Dispatcher
  readonly ops: OpsServer | undefined
  current(): ObserverSet
  reload(): Promise<ReloadResult<ObserverSet>>
  stop(): Promise<void>
}

export interface WorkerOptions {
  log: Logger
  /** Start the HTTP ops server. @defaultValue true */
  http?: boolean
  onReport?: (report: ExecutionReport) => void
}

/** Wires the stages together: capture → dispatch → queue → execute → report, then ops. */
export async function startWorker(config: Config, opts: WorkerOptions): Promise<Worker> {
  const { log } = opts
  if (opts.http !== false) assertSafeBinding(config)
  configureHttp({ blockPrivateNetworks: config.blockPrivateNetworks })
  const closer = createCloser()
  const { opened } = closer
  try {
    const storage = await openStorage(config, log, closer)
    const { db, pool, queue } = storage
    const telemetry = createTelemetry(pool)
    const tracing = opened(await startTracing(config.env, log), (t) => t?.shutdown())
    const sources = createSources(config)
    const demo = db.embedded !== undefined
    const observers = opened(
      await startObservers(pool, config, log, {
        countConditionError: telemetry.onConditionError,
        sources,
        demo,
      }),
      (r) => r.close(),
    )
    const matcher = () => observers.current().matcher
    const delivering = await startDelivery(
      storage,
      { config, log, telemetry, tracing, onReport: opts.onReport },
      closer,
    )
    const dispatcher = opened(
      startDispatcher({
        url: db.directUrl,
        pool,
        queue,
        config,
        log,
        sources,
        matcher: tracing ? () => tracing.matcher(matcher()) : matcher,
        wakeRunners: (queues) => {
          for (const queue of queues) delivering.runners.mark(queue)
        },
        leaseSlots: (queue, n) => delivering.runners.lease(queue, n),
        onDispatched: (events, jobs) => {
          telemetry.onDispatched(events, jobs)
          tracing?.onDispatched(events)
        },
      }),
      (d) => d.stop(),
    )
    registerSourceGauges(telemetry.metrics.registry, dispatcher.health)
    const isLeader = () => dispatcher.listener.leader
    const housekeeping = opened(startHousekeeping({ pool, config, log, isLeader }), (h) => h.stop())

    const target = {
      url: db.url,
      pool,
      queue,
      dispatcher,
      telemetry,
      pause: delivering.control.pause,
      breakers: delivering.control.breakers,
      current: observers.current,
      reload: observers.reload,
      reloadProblems: observers.reloadProblems,
    }
    const ops = opts.http === false ? undefined : await startOpsServer(target, config, log)
    if (demo) {
      log.info(`embedded Postgres at ${db.url}`)
      await fireDemo(pool)
    }
    const stop = async () => {
      log.info('stopping: no new work, finishing in-flight actions')
      await ops?.close()
      observers.close()
      await housekeeping.stop()
      await dispatcher.stop()
      await delivering.runners.stop(config.shutdownGraceMs)
      await delivering.control.stop()
      await queue.stop({ graceful: true, timeout: config.shutdownGraceMs, close: true })
      await tracing?.shutdown()
      await closeConnections()
      await pool.end()
      await db.close()
      log.info('stopped')
    }
    return { ...target, ops, stop }
  } catch (err) {
    await closer.closeAll()
    throw err
  }
}
