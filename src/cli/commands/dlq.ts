import Table from 'cli-table3'
import type { Command } from 'commander'
import type { Config } from '../../config/config.ts'
import { findDatabaseUrl } from '../../db/connect.ts'
import type { Pool } from '../../db/pool.ts'
import { ConfigError, ErrorCode } from '../../errors/errors.ts'
import { stringifyExact } from '../../json/exact.ts'
import { createLogger } from '../../log/log.ts'
import { type DlqFilterInput, narrows, parseDlqFilter, parsePositiveInt } from '../../ops/filters.ts'
import { type Queue, startQueue } from '../../queue/boss.ts'
import {
  countDeadLetters,
  type DeadLetter,
  type DeadLetterDetail,
  type DlqFilter,
  getDeadLetter,
  isJobId,
  isValidCursor,
  listDeadLetters,
  purgeDeadLetters,
  retryDeadLetters,
} from '../../queue/dlq.ts'
import { ExitCode, withPool } from '../context.ts'
import { fitColumns, printTable, truncate } from './table.ts'

/** Runs `fn` with a pool and a pg-boss instance that only inserts (no workers, no maintenance). */
export async function withQueue<T>(fn: (queue: Queue, pool: Pool, config: Config) => Promise<T>): Promise<T> {
  return withPool(async (pool, config) => {
    const url = (await findDatabaseUrl(config)) ?? ''
    const queue = await startQueue(url, {
      log: createLogger('warn', process.stderr),
      poolSize: 2,
      supervise: false,
    })
    try {
      return await fn(queue, pool, config)
    } finally {
      await queue.stop({ graceful: false, close: true })
    }
  })
}

/**
 * A table without colours (output is read in terminals, logs and pipes alike); `compact` drops
 * the rule between rows, which only rows that wrap need.
 */
export function newTable(options: Table.TableConstructorOptions = {}, compact = true): Table.Table {
  return new Table({ style: { head: [], border: [], compact }, ...options })
}

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2))
}

interface FilterOptions extends DlqFilterInput {
  json?: boolean
}

function withFilters(cmd: Command): Command {
  return cmd
    .option('--observer <name>', 'only this observer')
    .option('--type <type>', 'only this action type (webhook, email, ...)')
    .option('--entity <table>', 'only changes of this table (public implied)')
    .option('--since <time>', 'dead-lettered at or after: ISO-8601 or an age (30m, 1h, 7d)')
    .option('--until <time>', 'dead-lettered before: ISO-8601 or an age')
    .option('--code <code>', 'only those whose last attempt failed with this error code (OB004, ...)')
    .option('--json', 'machine-readable output')
}

/** Ids and filters combined; ids must be job UUIDs. */
function selection(ids: string[], opts: FilterOptions): DlqFilter {
  const bad = ids.filter((id) => !isJobId(id))
  if (bad.length > 0)
    throw new ConfigError(ErrorCode.InvalidConfig, `not a dead-letter id: ${bad.join(', ')}`)
  return { ...parseDlqFilter(opts), ...(ids.length > 0 ? { ids } : {}) }
}

const shortTime = (d: Date) => `${d.toISOString().slice(0, 19).replace('T', ' ')}Z`
const clip = (text: string | null, n: number) =>
  !text ? '' : text.length > n ? `${text.slice(0, n - 1)}…` : text

function printList(items: DeadLetter[], nextCursor: string | null): void {
  if (items.length === 0) {
    console.log('no dead letters match')
    return
  }
  // The last error gets a full-width row of its own under each dead letter: beside seven
  // columns, 120 characters leave it no room.
  const head = ['id', 'failed at', 'observer', 'action', 'row', 'tries']
  const rows = items.map((d) => [
    d.id,
    shortTime(d.failed_at),
    d.observer,
    `${d.action_index}:${d.action_type}`,
    `${d.entity} ${d.entity_id}`,
    String(d.attempts),
  ])
  const natural = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)) + 2)
  const widths = fitColumns(natural, [0, 1])
  const cut = (cells: string[]) => cells.map((c, i) => truncate(c, (widths[i] ?? 3) - 2))
  const table = newTable({ head, colWidths: widths, wordWrap: true }, false)
  items.forEach((d, i) => {
    table.push(cut(rows[i] ?? []))
    table.push([{ colSpan: head.length, content: `last error: ${clip(d.last_error, 400)}` }])
  })
  console.log(table.toString())
  console.log(`${items.length} dead letter(s)${nextCursor ? `; more with --cursor ${nextCursor}` : ''}`)
}

function printDetail(d: DeadLetterDetail): void {
  const table = newTable()
  table.push(
    { id: d.id },
    { 'failed at': shortTime(d.failed_at) },
    { observer: `${d.observer} (action ${d.action_index}, ${d.action_type})` },
    { delivery: d.delivery_id },
    { change: `${d.event} ${d.entity} ${d.entity_id} (event ${d.event_id}, seq ${d.delivery.event.seq})` },
    { queue: d.source_queue ?? '' },
    { 'on failure': d.delivery.on_failure },
  )
  console.log(table.toString())
  printTable(
    ['#', 'at', 'code', 'status', 'ms', 'error'],
    d.attempt_history.map((a) => [a.attempt, a.at, a.code, a.status ?? '', a.duration_ms, a.error]),
    { wrap: true, rules: true },
  )
  console.log(`action: ${stringifyExact(d.delivery.action)}`)
  console.log(`before: ${image(d.delivery.event.before)}`)
  console.log(`after: ${image(d.delivery.event.after)}`)
}

// A row image can be megabytes; --json prints it whole.
const maxImageChars = 4000

function image(row: unknown): string {
  if (row === null || row === undefined) return '(none)'
  const text = stringifyExact(row)
  if (text.length <= maxImageChars) return text
  return `${text.slice(0, maxImageChars)}… (${text.length - maxImageChars} more characters; --json prints all)`
}

function registerList(dlq: Command): void {
  withFilters(dlq.command('list').description('list dead letters, newest first'))
    .option('--limit <n>', 'rows per page (max 500)', '50')
    .option('--cursor <cursor>', 'continue after the last row of a previous page')
    .action(async (opts: FilterOptions & { limit: string; cursor?: string }) => {
      const filter = parseDlqFilter(opts)
      const limit = parsePositiveInt(opts.limit, '--limit', 500)
      if (opts.cursor && !isValidCursor(opts.cursor))
        throw new ConfigError(ErrorCode.InvalidConfig, 'invalid --cursor')
      const page = await withPool((pool) => listDeadLetters(pool, filter, { limit, cursor: opts.cursor }))
      if (opts.json) printJson({ items: page.items, next_cursor: page.nextCursor })
      else printList(page.items, page.nextCursor)
    })
}

function registerShow(dlq: Command): void {
  dlq
    .command('show')
    .description('one dead letter: the change, the action and every attempt')
    .argument('<id>', 'dead-letter id (from dlq list)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => {
      selection([id], {})
      const item = await withPool((pool) => getDeadLetter(pool, id))
      // Not a database fault: the id names no dead letter (never one, or retried or purged since).
      if (!item) throw new ConfigError(ErrorCode.InvalidConfig, `no dead letter with id ${id}`)
      if (opts.json) printJson(item)
      else printDetail(item)
    })
}

function registerRetry(dlq: Command): void {
  withFilters(dlq.command('retry').description('put dead letters back on their queues as fresh deliveries'))
    .argument('[ids...]', 'dead-letter ids; without ids, every dead letter the filters select')
    .option('--all', 'retry every dead letter (needed when no id or filter is given)')
    .action(async (ids: string[], opts: FilterOptions & { all?: boolean }) => {
      const filter = selection(ids, opts)
      if (!narrows(filter) && !opts.all) {
        throw new ConfigError(ErrorCode.InvalidConfig, 'dlq retry needs ids, a filter, or --all')
      }
      const jobIds = await withPool((pool) => retryDeadLetters(pool, filter))
      if (opts.json) printJson({ retried: jobIds.length, job_ids: jobIds })
      else console.log(`retried ${jobIds.length} dead letter(s)`)
      if (ids.length > 0 && jobIds.length < ids.length) {
        console.error(`${ids.length - jobIds.length} of the given id(s) were not in the dead-letter queue`)
        process.exitCode = ExitCode.failure
      }
    })
}

function registerPurge(dlq: Command): void {
  withFilters(dlq.command('purge').description('delete dead letters for good'))
    .argument('[ids...]', 'dead-letter ids; without ids, every dead letter the filters select')
    .option('--yes', 'confirm deleting every dead letter (needed when no id or filter is given)')
    .option('--dry-run', 'only count what would be deleted')
    .action(async (ids: string[], opts: FilterOptions & { yes?: boolean; dryRun?: boolean }) => {
      const filter = selection(ids, opts)
      if (opts.dryRun) {
        const matched = await withPool((pool) => countDeadLetters(pool, filter))
        if (opts.json) printJson({ matched })
        else console.log(`${matched} dead letter(s) match; nothing deleted`)
        return
      }
      if (!narrows(filter) && !opts.yes) {
        throw new ConfigError(
          ErrorCode.InvalidConfig,
          'dlq purge deletes every dead letter: pass --yes, ids or a filter',
        )
      }
      const deleted = await withPool((pool) => purgeDeadLetters(pool, filter))
      if (opts.json) printJson({ deleted })
      else console.log(`deleted ${deleted} dead letter(s)`)
    })
}

export function register(program: Command): void {
  const dlq = program.command('dlq').description('inspect, retry and purge dead-lettered deliveries')
  registerList(dlq)
  registerShow(dlq)
  registerRetry(dlq)
  registerPurge(dlq)
}
