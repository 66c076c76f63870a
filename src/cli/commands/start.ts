import type { Command } from 'commander'
import { type Config, loadConfig } from '../../config/config.ts'
import { ConfigError, coerceError, ErrorCode } from '../../errors/errors.ts'
import { createLogger, type Logger } from '../../log/log.ts'
import type { Worker } from '../../worker/worker.ts'
import { ExitCode } from '../context.ts'

/**
 * Signal handling for the worker process, installed before start-up begins: a signal that
 * arrives while the worker is still starting is held and acted on once it runs, instead of
 * killing the process (SIGHUP's default) or cutting start-up short.
 */
function handleSignals(log: Logger) {
  let worker: Worker | undefined
  let stopSignal: string | undefined
  let reloadPending = false
  const stop = (w: Worker, signal: string) => {
    log.info({ signal }, `received ${signal}`)
    w.stop().then(
      () => process.exit(ExitCode.ok),
      (err: unknown) => {
        log.error({ err: coerceError(err) }, 'shutdown failed')
        process.exit(ExitCode.failure)
      },
    )
  }
  const reload = (w: Worker) => {
    w.reload().catch((err: unknown) => log.error({ err: coerceError(err) }, 'reload failed'))
  }
  const onStop = (signal: string) => {
    if (stopSignal) return
    stopSignal = signal
    if (worker) stop(worker, signal)
  }
  process.on('SIGTERM', () => onStop('SIGTERM'))
  process.on('SIGINT', () => onStop('SIGINT'))
  process.on('SIGHUP', () => {
    if (worker) reload(worker)
    else reloadPending = true
  })
  return (started: Worker) => {
    worker = started
    if (stopSignal) stop(started, stopSignal)
    else if (reloadPending) reload(started)
  }
}

/** A taken ops port is a configuration problem: name the variable that chose it. */
function explainStartError(err: unknown, config: Config): Error {
  const e = coerceError(err) as Error & { code?: string }
  if (e.code !== 'EADDRINUSE') return e
  return new ConfigError(
    ErrorCode.InvalidConfig,
    `PORT ${config.port} is already in use on ${config.host}; set PORT to a free port (0 picks any)`,
    { cause: e },
  )
}

export function register(program: Command): void {
  program
    .command('start')
    .description('run the worker: migrate, watch tables, dispatch changes and execute actions')
    .action(async () => {
      const config = loadConfig()
      const log = createLogger(config.logLevel, undefined, { pretty: config.logPretty })
      const started = handleSignals(log)
      // Loaded here so that the other commands and --help never load the worker's dependencies.
      const { startWorker } = await import('../../worker/worker.ts')
      started(
        await startWorker(config, { log }).catch((err: unknown) => {
          throw explainStartError(err, config)
        }),
      )
    })
}
