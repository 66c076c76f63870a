import type { Command } from 'commander'
import { loadConfig } from '../../config.ts'
import { coerceError } from '../../errors.ts'
import { createLogger } from '../../log.ts'
import { startWorker } from '../../worker.ts'
import { ExitCode } from '../context.ts'

export function register(program: Command): void {
  program
    .command('start')
    .description('run the worker: migrate, watch tables, dispatch changes and execute actions')
    .action(async () => {
      const config = loadConfig()
      const log = createLogger(config.logLevel, undefined, { pretty: config.logPretty })
      const worker = await startWorker(config, { log })
      let stopping = false
      const shutdown = (signal: string) => {
        if (stopping) return
        stopping = true
        log.info({ signal }, `received ${signal}`)
        worker.stop().then(
          () => process.exit(ExitCode.ok),
          (err: unknown) => {
            log.error({ err: coerceError(err) }, 'shutdown failed')
            process.exit(ExitCode.failure)
          },
        )
      }
      process.on('SIGTERM', () => shutdown('SIGTERM'))
      process.on('SIGINT', () => shutdown('SIGINT'))
      process.on('SIGHUP', () => {
        worker.reload().catch((err: unknown) => log.error({ err: coerceError(err) }, 'reload failed'))
      })
    })
}
