import type { Command } from 'commander'
import { unwatchTable, watchTable } from '../../capture/watch.ts'
import { AppError, ErrorCode } from '../../errors.ts'
import { normaliseEntity } from '../../observers/load.ts'
import { withPool } from '../context.ts'

export function register(program: Command): void {
  program
    .command('watch')
    .description('attach the capture trigger to a table')
    .argument('<table>', 'schema.table (public implied)')
    .option('--tenant-column <column>', 'column whose value becomes tenant_id')
    .action(async (table: string, opts: { tenantColumn?: string }) => {
      const entity = normaliseEntity(table)
      const found = await withPool((pool, config) =>
        watchTable(pool, entity, {
          tenantColumn: opts.tenantColumn ?? null,
          actorSetting: config.actorSetting,
          noopUpdates: false,
        }),
      )
      if (!found) throw new AppError(ErrorCode.InvalidConfig, `table "${entity}" does not exist`)
      console.log(`watching ${entity}`)
    })

  program
    .command('unwatch')
    .description('detach the capture trigger from a table')
    .argument('<table>', 'schema.table (public implied)')
    .action(async (table: string) => {
      const entity = normaliseEntity(table)
      const found = await withPool((pool) => unwatchTable(pool, entity))
      if (!found) throw new AppError(ErrorCode.InvalidConfig, `table "${entity}" does not exist`)
      console.log(`stopped watching ${entity}`)
    })
}
