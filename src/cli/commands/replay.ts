import { SingleBar } from 'cli-progress'
import type { Command } from 'commander'
import { actionTypes } from '../../actions/registry.ts'
import type { Config } from '../../config/config.ts'
import { buildMatcher } from '../../dispatch/match.ts'
import { ConfigError, describeError, ErrorCode } from '../../errors/errors.ts'
import { loadObservers } from '../../observers/load.ts'
import type { Observer } from '../../observers/types.ts'
import { ensureQueues } from '../../queue/boss.ts'
import { destinationName, jobOf } from '../../queue/policy.ts'
import { countReplayRange, type ReplayResult, replayChanges } from '../../replay/replay.ts'
import { parseReplayRequest, type ReplayRequest } from '../../replay/request.ts'
import { printJson, withQueue } from './dlq.ts'
import { printTable } from './table.ts'

// Below this many changes a replay finishes before a bar would be worth drawing.
const progressBarThreshold = 2000

interface ReplayOptions extends ReplayRequest {
  json?: boolean
}

async function observersFor(config: Config, only: string | undefined): Promise<Observer[]> {
  const { observers, problems } = await loadObservers(config.observersDir)
  for (const p of problems) console.error(`skipped: ${describeError(p)}`)
  if (only !== undefined && !observers.some((o) => o.name === only)) {
    throw new ConfigError(
      ErrorCode.NoMatchingObservers,
      `no valid observer named "${only}" in ${config.observersDir}`,
    )
  }
  if (observers.length === 0) {
    throw new ConfigError(ErrorCode.NoMatchingObservers, `no valid observers in ${config.observersDir}`)
  }
  return observers
}

function printResult(result: ReplayResult, dryRun: boolean): void {
  const verb = dryRun ? 'would send' : 'sent'
  console.log(
    `${result.changes} change(s): ${verb} ${result.deliveries} delivery(ies); ${result.already_delivered} already delivered ${dryRun ? 'would be' : 'were'} skipped`,
  )
  if (result.destinations.length === 0) return
  printTable(
    ['observer', 'action', 'type', 'destination', dryRun ? 'would send' : 'sent', 'already delivered'],
    result.destinations.map((d) => [
      d.observer,
      String(d.action_index),
      d.type,
      d.destination,
      String(d.deliveries),
      String(d.already_delivered),
    ]),
  )
}

export function register(program: Command): void {
  program
    .command('replay')
    .description('dispatch change-log rows again through the current observers, or preview it')
    .option('--since <time>', 'changes captured at or after: ISO-8601 or an age (30m, 1h, 7d)')
    .option('--until <time>', 'changes captured before: ISO-8601 or an age')
    .option('--seq <range>', 'changes by seq: 100..200, 100.. or 100 (inclusive)')
    .option('--observer <name>', 'only this observer’s deliveries')
    .option('--entity <table>', 'only changes of this table (public implied)')
    .option('--outcome <outcome>', 'only deliveries whose last outcome was: failed')
    .option('--include-delivered', 'also send deliveries already acknowledged')
    .option('--dry-run', 'count what would be sent, to which destinations; send nothing')
    .option('--json', 'machine-readable output')
    .action(async (opts: ReplayOptions) => {
      const { range, includeDelivered, dryRun } = parseReplayRequest(opts)
      const result = await withQueue(async (queue, pool, config) => {
        const observers = await observersFor(config, range.observer)
        if (!dryRun) await ensureQueues(queue, actionTypes.keys(), config.dlqRetentionDays)
        const total = await countReplayRange(pool, range)
        const bar =
          !opts.json && process.stderr.isTTY && total >= progressBarThreshold
            ? new SingleBar({ stream: process.stderr, format: 'replay [{bar}] {value}/{total} changes' })
            : undefined
        bar?.start(total, 0)
        try {
          const matcher = buildMatcher(observers, jobOf)
          return await replayChanges({ pool, queue, matcher, destination: destinationName }, range, {
            onProgress: (n) => bar?.update(n),
            includeDelivered,
            dryRun,
            batchSize: dryRun ? 5000 : 500,
          })
        } finally {
          bar?.stop()
        }
      })
      if (opts.json) printJson({ dry_run: dryRun, ...result })
      else printResult(result, dryRun)
    })
}
