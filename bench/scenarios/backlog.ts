import { setTimeout as delay } from 'node:timers/promises'
import { loadConfig } from '../../src/config/config.ts'
import { lockKeys } from '../../src/db/locks.ts'
import { startCpuMeter } from '../cpu.ts'
import { benchTable, clearJobs, resetTables, undispatchedCount, watchBenchTable } from '../database.ts'
import {
  awaitDeliveries,
  type BenchContext,
  fmt,
  type Row,
  type ScenarioResult,
  stallMs,
  startWorker,
  statementFigures,
} from '../harness.ts'
import { insertInBatches } from '../load.ts'
import type { WorkerVariant } from '../options.ts'
import { resetStatementStats, statementCosts } from '../pg-stats.ts'
import { processCpuMs, sampleMemory } from '../proc.ts'
import { mib, perSecond, round } from '../stats.ts'

async function fillBacklog(ctx: BenchContext, rows: number): Promise<void> {
  const { pool } = ctx.db
  await clearJobs(pool)
  await resetTables(pool)
  await watchBenchTable(pool)
  ctx.note(`backlog: committing ${rows} changes with the worker stopped`)
  await insertInBatches(ctx.db.url, rows)
  const waiting = await undispatchedCount(pool)
  if (waiting !== rows) throw new Error(`expected ${rows} undispatched changes, found ${waiting}`)
}

async function drain(ctx: BenchContext, rows: number, variant: WorkerVariant, label: string) {
  ctx.note(`backlog: starting the worker${label ? ` ${label.trim()}` : ''}`)
  ctx.receiver.reset()
  await resetStatementStats(ctx.db.pool, ctx.statementStats)
  const spawnedAt = performance.now()
  const worker = await startWorker(ctx, false, variant)
  const memory = sampleMemory(worker.pid, 250)
  const cpu = startCpuMeter(ctx.postmasterPid, worker.pid)
  try {
    const last = await awaitDeliveries(ctx, worker, rows)
    const mem = memory.stop()
    const split = cpu(rows)
    const probe = await worker.probe()
    const statements = await statementCosts(ctx.db.pool, ctx.statementStats, rows)
    let first = Number.POSITIVE_INFINITY
    for (const at of ctx.receiver.arrivals.values()) first = Math.min(first, at)
    const drainRate = perSecond(rows, last - first)
    const figures = {
      ...variant,
      rows,
      startupToFirstDeliveryMs: round(first - spawnedAt, 0),
      drainSeconds: round((last - first) / 1000, 2),
      drainPerSecond: drainRate,
      spawnToDrainedSeconds: round((last - spawnedAt) / 1000, 2),
      peakRssMiB: mib(Math.max(mem.peakRssBytes, mem.hwmBytes)),
      vmHwmMiB: mib(mem.hwmBytes),
      /** Heap in use once drained: far below the peak RSS means garbage, not retention. */
      heapUsedAfterMiB: mib(probe.heapUsedBytes),
      duplicates: ctx.receiver.duplicates,
      cpuIncludingStartup: split,
      ...statementFigures(probe, rows),
      serverStatements: statements,
    }
    const tableRows: Row[] = [
      { metric: `${label}drain rate (${rows} changes)`, value: fmt(drainRate, '/s') },
      { metric: `${label}worker spawn → first delivery`, value: fmt(first - spawnedAt, 'ms', 0) },
      { metric: `${label}worker peak RSS (VmHWM)`, value: fmt(mib(mem.hwmBytes), 'MiB') },
    ]
    return { figures, rows: tableRows }
  } finally {
    memory.stop()
    await worker.stop()
  }
}

/** Waits until `processes` workers' listener sessions share every dispatch partition. */
async function partitionsShared(ctx: BenchContext, processes: number, partitions: number) {
  const started = performance.now()
  for (;;) {
    const { rows } = await ctx.db.pool.query<{ held: number; holders: number }>(
      `select count(*)::int as held, count(distinct pid)::int as holders from pg_locks
        where locktype = 'advisory' and granted and objsubid = 2 and classid::bigint = $1
          and objid::bigint / 65536 = $2
          and database = (select oid from pg_database where datname = current_database())`,
      [lockKeys.partitionClass, partitions],
    )
    if (rows[0]?.held === partitions && rows[0]?.holders === Math.min(processes, partitions)) return
    if (performance.now() - started > stallMs)
      throw new Error(
        `${processes} workers did not share ${partitions} partitions: ${JSON.stringify(rows[0])}`,
      )
    await delay(100)
  }
}

/** When the change log's queue emptied: every change turned into jobs (polled every 50 ms). */
async function dispatched(ctx: BenchContext, delivered: Promise<number>): Promise<number> {
  let failed = false
  delivered.catch(() => {
    failed = true
  })
  while (!failed) {
    const { rows } = await ctx.db.pool.query<{ waiting: boolean }>(
      'select exists (select 1 from observers.change_pending) as waiting',
    )
    if (!rows[0]?.waiting) return performance.now()
    await delay(50)
  }
  return delivered
}

/**
 * `processes` workers, started and idle, with the partitions shared out among them; then
 * `rows` changes commit in one transaction, so every worker meets the whole backlog at once
 * and start-up times do not count. Drain: that commit → the last first delivery.
 */
async function drainShared(ctx: BenchContext, rows: number, variant: WorkerVariant, processes: number) {
  const { pool } = ctx.db
  await clearJobs(pool)
  await resetTables(pool)
  await watchBenchTable(pool)
  ctx.note(`backlog: starting ${processes} worker process(es)`)
  const workers = await Promise.all(Array.from({ length: processes }, () => startWorker(ctx, false, variant)))
  try {
    const partitions = loadConfig(variant.env).dispatchPartitions
    await partitionsShared(ctx, processes, partitions)
    ctx.receiver.reset()
    ctx.note(`backlog: committing ${rows} changes in one transaction, ${processes} process(es) waiting`)
    await pool.query(
      `insert into ${benchTable} (account_id, status, amount, note)
       select g % 1000, 'new', (g % 100000) / 100.0, 'order ' || g from generate_series(1, $1::int) g`,
      [rows],
    )
    const committedAt = performance.now()
    const worker0 = workers.map((w) => processCpuMs(w.pid))
    // Postgres is left out: on a shared server its processes serve other databases too.
    const cpu = startCpuMeter(undefined, undefined)
    const delivered = Promise.race([ctx.receiver.waitFor(rows, stallMs), ...workers.map((w) => w.crashed)])
    const dispatchedAt = await dispatched(ctx, delivered)
    const last = await delivered
    const split = cpu(rows)
    const workerMs = workers.reduce((sum, w, i) => sum + processCpuMs(w.pid) - (worker0[i] ?? 0), 0)
    const drainRate = perSecond(rows, last - committedAt)
    const dispatchRate = perSecond(rows, dispatchedAt - committedAt)
    const figures = {
      processes,
      partitions,
      rows,
      dispatchSeconds: round((dispatchedAt - committedAt) / 1000, 2),
      dispatchPerSecond: dispatchRate,
      drainSeconds: round((last - committedAt) / 1000, 2),
      drainPerSecond: drainRate,
      duplicates: ctx.receiver.duplicates,
      workersUsPerEvent: round((workerMs * 1000) / rows, 0),
      /** Share of both CPUs busy, whoever used them: near 1 means the rates measure the machine. */
      machineBusy: split.machineBusy,
    }
    const label = `${processes} process${processes === 1 ? '' : 'es'}`
    const tableRows: Row[] = [
      { metric: `${label}: dispatch (commit → all ${rows} changes queued)`, value: fmt(dispatchRate, '/s') },
      { metric: `${label}: drain (commit → last delivery)`, value: fmt(drainRate, '/s') },
    ]
    return { figures, rows: tableRows }
  } finally {
    await Promise.all(workers.map((w) => w.stop()))
  }
}

/** The backlog drained by 1, 2, 4… worker processes sharing the dispatch partitions (`--processes`). */
async function runShared(ctx: BenchContext): Promise<ScenarioResult> {
  const variant = ctx.options.workers[0]
  if (!variant) throw new Error('no worker to run')
  const measured = []
  for (const processes of ctx.options.processes) {
    measured.push(await drainShared(ctx, ctx.options.backlogRows, variant, processes))
  }
  return { figures: { shared: measured.map((m) => m.figures) }, rows: measured.flatMap((m) => m.rows) }
}

/**
 * Commits `backlogRows` changes with no worker running, then starts one: how fast it drains the
 * backlog and how much memory it takes doing so (sampled from /proc, so it is the worker's own).
 * With a second worker variant, the backlog is committed again and drained by that one.
 */
export async function runBacklog(ctx: BenchContext): Promise<ScenarioResult> {
  if (ctx.options.processes.length > 0) return runShared(ctx)
  const rows = ctx.options.backlogRows
  const several = ctx.options.workers.length > 1
  const measured = []
  for (const variant of ctx.options.workers) {
    await fillBacklog(ctx, rows)
    measured.push(await drain(ctx, rows, variant, several ? `[${variant.label}] ` : ''))
  }
  const [first] = measured
  return {
    figures: { ...first?.figures, ...(several ? { variants: measured.map((m) => m.figures) } : {}) },
    rows: measured.flatMap((m) => m.rows),
  }
}
