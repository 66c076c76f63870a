import type { Command } from 'commander'
import { actionTypes } from '../../actions/registry.ts'
import { loadConfig } from '../../config/config.ts'
import { openDatabase } from '../../db/connect.ts'
import { migrate } from '../../db/migrate.ts'
import { createPool } from '../../db/pool.ts'
import { createLogger } from '../../log/log.ts'
import { ensureQueues, startQueue } from '../../queue/boss.ts'

export function register(program: Command): void {
  program
    .command('migrate')
    .description('create or upgrade the database objects (schema observers, pg-boss tables and queues)')
    .action(async () => {
      const config = loadConfig()
      const log = createLogger(config.logLevel)
      const db = await openDatabase(config)
      try {
        // pg-boss installs its own schema first: our inspection views read its job table.
        const queue = await startQueue(db.url, { log, poolSize: 2, supervise: false })
        try {
          await ensureQueues(queue, actionTypes.keys(), config.dlqRetentionDays)
        } finally {
          await queue.stop({ graceful: false, close: true })
        }
        const pool = createPool(db.url, { max: 2 })
        const applied = await migrate(pool).finally(() => pool.end())
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date')
      } finally {
        await db.close()
      }
    })
}
