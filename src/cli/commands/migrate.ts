import type { Command } from 'commander'
import { actionTypes } from '../../actions/registry.ts'
import { loadConfig } from '../../config/config.ts'
import { openDatabase } from '../../db/connect.ts'
import { migrate } from '../../db/migrate.ts'
import { createPool, type Pool } from '../../db/pool.ts'
import { createLogger } from '../../log/log.ts'
import { ensureQueues, startQueue } from '../../queue/boss.ts'

/**
 * Migrates, then gives every watched table the kind of capture trigger it now needs
 * (observers.rewatch, docs/database.md): a table attached as a partition since it was watched
 * must move to row-level capture, and only this command, run as the owner, may create triggers.
 */
async function migrateAndRewatch(pool: Pool): Promise<{ applied: string[]; rewatched: string[] }> {
  const applied = await migrate(pool)
  const { rows } = await pool.query<{ entity: string }>('select observers.rewatch() as entity')
  return { applied, rewatched: rows.map((r) => r.entity) }
}

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
        const { applied, rewatched } = await migrateAndRewatch(pool).finally(() => pool.end())
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date')
        if (rewatched.length) console.log(`capture triggers reinstalled: ${rewatched.join(', ')}`)
      } finally {
        await db.close()
      }
    })
}
