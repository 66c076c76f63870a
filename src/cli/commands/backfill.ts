import { SingleBar } from 'cli-progress'
import type { Command } from 'commander'
import { actionTypes } from '../../actions/registry.ts'
import { backfillDefaults, createBackfill, runBackfill } from '../../backfill/backfill.ts'
import type { BackfillState } from '../../db/queries/backfills.ts'
import { ConfigError, ErrorCode } from '../../errors/errors.ts'
import { loadObservers } from '../../observers/load.ts'
import { parsePositiveInt } from '../../ops/filters.ts'
import { ensureQueues } from '../../queue/boss.ts'
import { ExitCode } from '../context.ts'
import { printJson, withQueue } from './dlq.ts'

interface BackfillOptions {
  where?: string
  observer: string[]
  pageSize: string
  pauseMs: string
  resume?: string
  json?: boolean
}

const collect = (value: string, previous: string[]) => [...previous, value]

function pauseOf(text: string): number {
  if (text === '0') return 0
  return parsePositiveInt(text, '--pause-ms', 60_000)
}

function describe(s: BackfillState): string {
  const total = s.rows_total === null ? '' : ` of ${s.rows_total}`
  return `backfill ${s.id} of ${s.entity}: ${s.state}, ${s.rows_done}${total} row(s) queued${s.error ? ` (${s.error})` : ''}`
}

export function register(program: Command): void {
  program
    .command('backfill')
    .description('deliver every existing row of a table (or those matching) as snapshot events')
    .argument('[table]', 'table to read (public implied); omit with --resume')
    .option('--where <sql>', 'only rows matching this SQL condition')
    .option(
      '--observer <name>',
      'deliver through this observer (repeatable; default: every observer of the table)',
      collect,
      [],
    )
    .option('--page-size <n>', 'rows read per transaction', String(backfillDefaults.pageSize))
    .option(
      '--pause-ms <ms>',
      'pause between pages, so the application’s writes keep their pace',
      String(backfillDefaults.pauseMs),
    )
    .option('--resume <id>', 'continue a stopped or crashed backfill from where it was')
    .option('--json', 'machine-readable output')
    .action(async (table: string | undefined, opts: BackfillOptions) => {
      if (!table === !opts.resume)
        throw new ConfigError(ErrorCode.InvalidConfig, 'backfill needs a table, or --resume <id>')
      const stop = new AbortController()
      const onSignal = () => stop.abort()
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      try {
        const state = await withQueue(async (queue, pool, config) => {
          const { observers } = await loadObservers(config.observersDir)
          await ensureQueues(queue, actionTypes.keys(), config.dlqRetentionDays)
          const id = opts.resume
            ? parsePositiveInt(opts.resume, '--resume', Number.MAX_SAFE_INTEGER)
            : (
                await createBackfill(pool, observers, {
                  table: table ?? '',
                  where: opts.where,
                  observers: opts.observer,
                  pageSize: parsePositiveInt(opts.pageSize, '--page-size', 100_000),
                  pauseMs: pauseOf(opts.pauseMs),
                })
              ).id
          if (!opts.json) console.error(`backfill ${id} started (resume it with --resume ${id})`)
          const bar =
            !opts.json && process.stderr.isTTY
              ? new SingleBar({ stream: process.stderr, format: 'backfill [{bar}] {value}/{total} rows' })
              : undefined
          try {
            return await runBackfill({ pool, queue }, id, observers, {
              signal: stop.signal,
              onProgress: (s) => {
                if (bar && !bar.isActive) bar.start(s.rows_total ?? s.rows_done, s.rows_done)
                bar?.update(s.rows_done)
              },
            })
          } finally {
            bar?.stop()
          }
        })
        if (opts.json) printJson(state)
        else console.log(describe(state))
        if (state.state !== 'done') process.exitCode = ExitCode.failure
      } finally {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
      }
    })
}
