import { Command } from 'commander'
import { unwatchTable, watchTable } from '../capture/watch.ts'
import { loadConfig } from '../config.ts'
import { findDatabaseUrl, openDatabase } from '../db/connect.ts'
import { migrate } from '../db/migrate.ts'
import { createPool } from '../db/pool.ts'
import { AppError, coerceError, ErrorCode } from '../errors.ts'
import { createLogger } from '../log.ts'
import { loadObservers, normaliseEntity } from '../observers/load.ts'
import { startQueue } from '../queue/boss.ts'
import { startWorker } from '../worker.ts'

/** Exit codes: 0 ok, 1 failure at run time, 2 invalid input or configuration. */
export const ExitCode = { ok: 0, failure: 1, invalid: 2 } as const

const program = new Command()
  .name('observers')
  .description('Turn committed Postgres row changes into reliable side effects.')
  .showHelpAfterError()

program
  .command('start')
  .description('run the worker: migrate, watch tables, dispatch changes and execute actions')
  .action(async () => {
    const config = loadConfig()
    const log = createLogger(config.logLevel)
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

program
  .command('migrate')
  .description('create or upgrade the database objects (schema observers, pg-boss tables)')
  .action(async () => {
    const config = loadConfig()
    const log = createLogger(config.logLevel)
    const db = await openDatabase(config)
    try {
      const queue = await startQueue(db.url, { log, poolSize: 2, supervise: false })
      await queue.stop({ graceful: false, close: true })
      const pool = createPool(db.url, { max: 2 })
      const applied = await migrate(pool).finally(() => pool.end())
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date')
    } finally {
      await db.close()
    }
  })

program
  .command('validate')
  .description('check every observer file: schema, conditions, templates, referenced env vars')
  .argument('[dir]', 'observers directory (default: OBSERVERS_DIR or ./observers)')
  .action(async (dir?: string) => {
    const config = loadConfig(dir ? { ...process.env, OBSERVERS_DIR: dir } : process.env)
    const { observers, problems } = await loadObservers(config.observersDir)
    for (const p of problems) console.error(p.message)
    console.log(`${observers.length} observer(s) valid, ${problems.length} problem(s)`)
    process.exitCode = problems.length > 0 ? ExitCode.invalid : ExitCode.ok
  })

async function withPool<T>(fn: (pool: ReturnType<typeof createPool>) => Promise<T>): Promise<T> {
  const config = loadConfig()
  const url = await findDatabaseUrl(config)
  if (!url) throw new AppError(ErrorCode.InvalidConfig, 'DATABASE_URL is not set and no embedded database is running (npm start)')
  const pool = createPool(url, { max: 1 })
  try {
    return await fn(pool)
  } finally {
    await pool.end()
  }
}

program
  .command('watch')
  .description('attach the capture trigger to a table')
  .argument('<table>', 'schema.table (public implied)')
  .option('--tenant-column <column>', 'column whose value becomes tenant_id')
  .action(async (table: string, opts: { tenantColumn?: string }) => {
    const config = loadConfig()
    const found = await withPool((pool) =>
      watchTable(pool, normaliseEntity(table), { tenantColumn: opts.tenantColumn ?? null, actorSetting: config.actorSetting, noopUpdates: false }),
    )
    if (!found) throw new AppError(ErrorCode.InvalidConfig, `table "${table}" does not exist`)
    console.log(`watching ${normaliseEntity(table)}`)
  })

program
  .command('unwatch')
  .description('detach the capture trigger from a table')
  .argument('<table>', 'schema.table (public implied)')
  .action(async (table: string) => {
    const found = await withPool((pool) => unwatchTable(pool, normaliseEntity(table)))
    if (!found) throw new AppError(ErrorCode.InvalidConfig, `table "${table}" does not exist`)
    console.log(`stopped watching ${normaliseEntity(table)}`)
  })

program.parseAsync().catch((err: unknown) => {
  const e = coerceError(err)
  console.error(e instanceof AppError ? e.message : `error: ${e.message}`)
  process.exit(e instanceof AppError && e.code === ErrorCode.InvalidConfig ? ExitCode.invalid : ExitCode.failure)
})
