import { startCpuMeter } from '../cpu.ts'
import { clearJobs, resetTables, undispatchedCount, watchBenchTable } from '../database.ts'
import {
  awaitDeliveries,
  type BenchContext,
  fmt,
  type Row,
  type ScenarioResult,
  startWorker,
  statementFigures,
} from '../harness.ts'
import { insertInBatches } from '../load.ts'
import type { WorkerVariant } from '../options.ts'
import { resetStatementStats, statementCosts } from '../pg-stats.ts'
import { sampleMemory } from '../proc.ts'
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

/**
 * Commits `backlogRows` changes with no worker running, then starts one: how fast it drains the
 * backlog and how much memory it takes doing so (sampled from /proc, so it is the worker's own).
 * With a second worker variant, the backlog is committed again and drained by that one.
 */
export async function runBacklog(ctx: BenchContext): Promise<ScenarioResult> {
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
