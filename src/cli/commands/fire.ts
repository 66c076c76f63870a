import type { Command } from 'commander'
import { actionTypes } from '../../actions/registry.ts'
import { fireRow, observerNamed } from '../../backfill/fire.ts'
import { loadObservers } from '../../observers/load.ts'
import { ensureQueues } from '../../queue/boss.ts'
import { printJson, withQueue } from './dlq.ts'

export function register(program: Command): void {
  program
    .command('fire')
    .description('deliver one row’s current state through an observer now, as a snapshot event')
    .argument('<observer>', 'observer name')
    .requiredOption('--row <key>', 'primary key; a JSON array for a composite key ([1,"a"])')
    .option('--force', 'deliver even when the observer’s condition is false for the row')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { row: string; force?: boolean; json?: boolean }) => {
      const result = await withQueue(async (queue, pool, config) => {
        const { observers } = await loadObservers(config.observersDir)
        const observer = observerNamed(observers, name)
        await ensureQueues(queue, actionTypes.keys(), config.dlqRetentionDays)
        return fireRow({ pool, queue }, observer, opts.row, { force: !!opts.force })
      })
      if (opts.json) printJson(result)
      else {
        console.log(
          `queued ${result.delivery_ids.length} delivery(ies) of ${result.entity} ${result.entity_id} through ${result.observer}`,
        )
      }
    })
}
