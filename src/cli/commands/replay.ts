import { SingleBar } from 'cli-progress'
import type { Command } from 'commander'
import { actionTypes } from '../../actions/registry.ts'
import type { Config } from '../../config.ts'
import { actionDefaults } from '../../dispatch/action-defaults.ts'
import { buildMatcher } from '../../dispatch/match.ts'
import { ConfigError, ErrorCode } from '../../errors.ts'
import { loadObservers } from '../../observers/load.ts'
import type { Observer } from '../../observers/types.ts'
import { parseTime } from '../../ops/filters.ts'
import { ensureQueues } from '../../queue/boss.ts'
import { countReplayRange, parseSeqRange, type ReplayRange, replayChanges } from '../../replay.ts'
import { printJson, withQueue } from './dlq.ts'

// Below this many changes a replay finishes before a bar would be worth drawing.
const progressBarThreshold = 2000

interface ReplayOptions {
  since?: string
  seq?: string
  observer?: string
  json?: boolean
}

function rangeFrom(opts: ReplayOptions): ReplayRange {
  if (!opts.since && !opts.seq)
    throw new ConfigError(ErrorCode.InvalidConfig, 'replay needs --since or --seq')
  return {
    ...(opts.since ? { since: parseTime(opts.since, '--since') } : {}),
    ...(opts.seq ? parseSeqRange(opts.seq) : {}),
    observer: opts.observer,
  }
}

async function observersFor(config: Config, only: string | undefined): Promise<Observer[]> {
  const { observers, problems } = await loadObservers(config.observersDir)
  for (const p of problems) console.error(`skipped: ${p.message}`)
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

export function register(program: Command): void {
  program
    .command('replay')
    .description('dispatch change-log rows again through the current observers')
    .option('--since <time>', 'changes captured at or after: ISO-8601 or an age (30m, 1h, 7d)')
    .option('--seq <range>', 'changes by seq: 100..200, 100.. or 100 (inclusive)')
    .option('--observer <name>', 'only this observer’s deliveries')
    .option('--json', 'machine-readable output')
    .action(async (opts: ReplayOptions) => {
      const range = rangeFrom(opts)
      const result = await withQueue(async (queue, pool, config) => {
        const observers = await observersFor(config, opts.observer)
        await ensureQueues(queue, actionTypes.keys(), config.dlqRetentionDays)
        const total = await countReplayRange(pool, range)
        const bar =
          !opts.json && process.stderr.isTTY && total >= progressBarThreshold
            ? new SingleBar({ stream: process.stderr, format: 'replay [{bar}] {value}/{total} changes' })
            : undefined
        bar?.start(total, 0)
        try {
          const matcher = buildMatcher(observers, actionDefaults)
          return await replayChanges({ pool, queue, matcher }, range, { onProgress: (n) => bar?.update(n) })
        } finally {
          bar?.stop()
        }
      })
      if (opts.json) printJson(result)
      else console.log(`replayed ${result.changes} change(s) as ${result.deliveries} delivery(ies)`)
    })
}
