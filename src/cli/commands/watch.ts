import type { Command } from 'commander'
import { unwatchTable, watchTable } from '../../capture/watch.ts'
import { loadConfig } from '../../config/config.ts'
import { AppError, ConfigError, coerceError, ErrorCode } from '../../errors/errors.ts'
import { normaliseEntity } from '../../observers/load.ts'
import { unwatchMysqlTable, watchMysqlTable } from '../../sources/mysql/install.ts'
import { mysqlTarget, withMysqlPool } from '../../sources/mysql/target.ts'
import { withPool } from '../context.ts'

/** What observers.watch raises for a table it cannot capture: the user's input, not a failure. */
const unwatchableTable = new Set(['42P16', '42703'])

function asInvalidInput(err: unknown): Error {
  const e = coerceError(err) as Error & { code?: string; hint?: string }
  if (!e.code || !unwatchableTable.has(e.code)) return e
  const message = e.message.replace(/^observers\.watch: /, '')
  return new ConfigError(ErrorCode.InvalidConfig, e.hint ? `${message}. ${e.hint}` : message, { cause: e })
}

const sourceHelp = 'capture in MySQL/MariaDB instead: a mysql:// URL or a configured mysql source name'

// MySQL tables are captured by triggers there, into the change-log table the mysql source polls.
async function watchInMysql(table: string, source: string, tenantColumn: string | undefined) {
  const { url, logTable } = mysqlTarget(source, loadConfig())
  const entity = await withMysqlPool(url, (pool) => watchMysqlTable(pool, { table, tenantColumn, logTable }))
  console.log(`watching ${entity} (MySQL triggers write ${logTable}); observers use "entity": "${entity}"`)
}

export function register(program: Command): void {
  program
    .command('watch')
    .description('attach the capture trigger to a table')
    .argument('<table>', 'schema.table (public implied)')
    .option('--tenant-column <column>', 'column whose value becomes tenant_id')
    .option('--source <source>', sourceHelp)
    .action(async (table: string, opts: { tenantColumn?: string; source?: string }) => {
      if (opts.source) return watchInMysql(table, opts.source, opts.tenantColumn)
      const entity = normaliseEntity(table)
      const found = await withPool((pool, config) =>
        watchTable(pool, entity, {
          tenantColumn: opts.tenantColumn ?? null,
          actorSetting: config.actorSetting,
          noopUpdates: false,
        }),
      ).catch((err: unknown) => {
        throw asInvalidInput(err)
      })
      if (!found) throw new AppError(ErrorCode.InvalidConfig, `table "${entity}" does not exist`)
      console.log(`watching ${entity}`)
    })

  program
    .command('unwatch')
    .description('detach the capture trigger from a table')
    .argument('<table>', 'schema.table (public implied)')
    .option('--source <source>', sourceHelp)
    .action(async (table: string, opts: { source?: string }) => {
      if (opts.source) {
        const { url } = mysqlTarget(opts.source, loadConfig())
        console.log(`stopped watching ${await withMysqlPool(url, (pool) => unwatchMysqlTable(pool, table))}`)
        return
      }
      const entity = normaliseEntity(table)
      const found = await withPool((pool) => unwatchTable(pool, entity))
      if (!found) throw new AppError(ErrorCode.InvalidConfig, `table "${entity}" does not exist`)
      console.log(`stopped watching ${entity}`)
    })
}
