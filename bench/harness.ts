import { setTimeout as delay } from 'node:timers/promises'
import { type BenchDatabase, benchTable } from './database.ts'
import type { BenchOptions, WorkerVariant } from './options.ts'
import type { ProbeReport } from './probe.ts'
import { renice } from './proc.ts'
import { type Receiver, warmUpNote } from './receiver.ts'
import { spawnWorker, type WorkerProcess } from './worker.ts'

export interface BenchContext {
  options: BenchOptions
  db: BenchDatabase
  receiver: Receiver
  observersDir: string
  /** pg_stat_statements is available in the bench database. */
  statementStats: boolean
  /** The Postgres server's main process, when it runs on this machine (for CPU accounting). */
  postmasterPid: number | undefined
  /** Progress for the operator, on stderr so stdout stays the report. */
  note(message: string): void
}

/** One line of the report table. */
export interface Row {
  metric: string
  value: string
  goal?: string
  met?: boolean
}

export interface ScenarioResult {
  /** Every figure, for the JSON file. */
  figures: Record<string, unknown>
  rows: Row[]
  /** A table of its own, printed after the report table (the peers' side-by-side). */
  table?: string
}

export function firstWorker(ctx: BenchContext): WorkerVariant {
  const first = ctx.options.workers[0]
  if (!first) throw new Error('no worker to run')
  return first
}

/** No delivery for this long means the pipeline is broken, however slow it is allowed to be. */
export const stallMs = 60_000

/**
 * Starts the worker child; with `warmUp`, waits until one row has gone all the way through
 * (startup, watch, listener, queue workers, HTTP connection), then clears the receiver and
 * the probe's counters so the scenario measures only itself.
 */
export async function startWorker(
  ctx: BenchContext,
  warmUp = true,
  variant: WorkerVariant = firstWorker(ctx),
): Promise<WorkerProcess> {
  const worker = await spawnWorker({
    databaseUrl: ctx.db.url,
    observersDir: ctx.observersDir,
    env: variant.env,
    profile: ctx.options.profile,
    root: variant.root,
  })
  if (ctx.options.nice !== undefined) renice([worker.pid], ctx.options.nice)
  if (warmUp) await warmUpThrough(ctx, worker)
  return worker
}

/**
 * Inserts warm-up rows until one has gone all the way through whatever consumes the bench
 * table's changes, then clears the receiver and the probe's counters.
 */
export async function warmUpThrough(ctx: BenchContext, worker: WorkerProcess): Promise<void> {
  ctx.receiver.reset()
  const started = performance.now()
  // The table is watched by the worker at startup; until then the insert captures nothing.
  while (ctx.receiver.warmUps === 0) {
    if (performance.now() - started > stallMs)
      throw new Error(
        `worker did not deliver a warm-up event within ${stallMs / 1000} s:\n${worker.output()}`,
      )
    await ctx.db.pool.query(
      `insert into ${benchTable} (account_id, status, amount, note) values (0, 'new', 0, $1)`,
      [warmUpNote],
    )
    await Promise.race([delay(500), worker.crashed])
  }
  ctx.receiver.reset()
  await worker.probe()
}

/** Waits for `count` distinct deliveries; fails fast if the worker dies. Returns the last arrival time. */
export function awaitDeliveries(ctx: BenchContext, worker: WorkerProcess, count: number): Promise<number> {
  return Promise.race([ctx.receiver.waitFor(count, stallMs), worker.crashed])
}

/** SQL statements the worker ran per delivered event, and the five most frequent statements. */
export function statementFigures(probe: ProbeReport, events: number) {
  return {
    statementsPerEvent: events > 0 ? Math.round((probe.statements / events) * 100) / 100 : null,
    workerCpuMsPerEvent:
      events > 0 ? Math.round(((probe.cpuUserMs + probe.cpuSystemMs) / events) * 1000) / 1000 : null,
    topStatements: probe.byStatement.slice(0, 5),
  }
}

export function fmt(value: number, unit = '', digits = 1): string {
  if (!Number.isFinite(value)) return 'n/a'
  return `${value.toLocaleString('en-US', { maximumFractionDigits: digits })}${unit ? ` ${unit}` : ''}`
}
