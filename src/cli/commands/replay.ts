import { SingleBar } from 'cli-progress'
import type { Command } from 'commander'
import { actionTypes } from '../../actions/registry.ts'
import type { Config } from '../../config/config.ts'
import type { Pool } from '../../db/pool.ts'
import { buildMatcher } from '../../dispatch/match.ts'
import { ConfigError, describeError, ErrorCode } from '../../errors/errors.ts'
import { loadObservers } from '../../observers/load.ts'
import type { Observer } from '../../observers/types.ts'
import { ensureQueues, type Queue } from '../../queue/boss.ts'
import { destinationName, jobOf } from '../../queue/policy.ts'
import { openHistory } from '../../replay/history.ts'
import { type ReplayRange, type ReplayResult, replayChanges } from '../../replay/replay.ts'
import { parseReplayRequest, type ReplayRequest } from '../../replay/request.ts'
import { withPool } from '../context.ts'
import { printJson, withQueue } from './dlq.ts'
import { printTable } from './table.ts'

// Below this many changes a replay finishes before a bar would be worth drawing.
const progressBarThreshold = 2000

interface ReplayOptions extends ReplayRequest {
  json?: boolean
}

async function observersFor(config: Config, range: ReplayRange): Promise<Observer[]> {
  const { observers, problems } = await loadObservers(config.observersDir)
  for (const p of problems) console.error(`skipped: ${describeError(p)}`)
  const only = range.observer
  const named = observers.find((o) => o.name === only)
  if (only !== undefined && named?.source !== range.source) {
    throw new ConfigError(
      ErrorCode.NoMatchingObservers,
      named
        ? `observer "${only}" reads source "${named.source}", not "${range.source}" (see --source)`
        : `no valid observer named "${only}" in ${config.observersDir}`,
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

interface Run {
  range: ReplayRange
  includeDelivered: boolean
  dryRun: boolean
  json: boolean
}

/** Replays with the queue, or for a dry run with no queue at all: a preview starts nothing it does not need. */
async function replay(run: Run, pool: Pool, config: Config, queue: Queue | undefined) {
  const { range, includeDelivered, dryRun } = run
  const observers = await observersFor(config, range)
  if (queue) await ensureQueues(queue, actionTypes.keys(), config.dlqRetentionDays)
  const history = openHistory(pool, config, range.source, range)
  try {
    const showBar = !run.json && process.stderr.isTTY
    const total = showBar ? await history.count() : 0
    const bar =
      total >= progressBarThreshold
        ? new SingleBar({ stream: process.stderr, format: 'replay [{bar}] {value}/{total} changes' })
        : undefined
    bar?.start(total, 0)
    try {
      const matcher = buildMatcher(observers, jobOf)
      return await replayChanges({ pool, queue, matcher, history, destination: destinationName }, range, {
        onProgress: (n) => bar?.update(n),
        includeDelivered,
        dryRun,
        batchSize: dryRun ? 5000 : 500,
      })
    } finally {
      bar?.stop()
    }
  } finally {
    await history.close()
  }
}

export function register(program: Command): void {
  program
    .command('replay')
    .description('dispatch past changes of a source again through the current observers, or preview it')
    .option('--since <time>', 'changes captured at or after: ISO-8601 or an age (30m, 1h, 7d)')
    .option('--until <time>', 'changes captured before: ISO-8601 or an age')
    .option('--seq <range>', 'changes by seq (another source: its entry key): 100..200, 100.. or 100')
    .option(
      '--source <name>',
      'the source replayed: changelog (default), or a configured fraiseql/mysql source',
    )
    .option('--observer <name>', 'only this observer’s deliveries')
    .option(
      '--entity <name>',
      'only changes of this entity (a table, public implied; as the source names it)',
    )
    .option('--outcome <outcome>', 'only deliveries whose last outcome was: failed')
    .option('--include-delivered', 'also send deliveries already acknowledged')
    .option('--dry-run', 'count what would be sent, to which destinations; send nothing')
    .option('--json', 'machine-readable output')
    .action(async (opts: ReplayOptions) => {
      const run = { ...parseReplayRequest(opts), json: opts.json === true }
      const result = run.dryRun
        ? await withPool((pool, config) => replay(run, pool, config, undefined))
        : await withQueue((queue, pool, config) => replay(run, pool, config, queue))
      if (opts.json) printJson({ dry_run: run.dryRun, ...result })
      else printResult(result, run.dryRun)
    })
}
