import { clearJobs, resetTables, undispatchedCount, watchBenchTable } from '../database.ts'
import {
  awaitDeliveries,
  type BenchContext,
  fmt,
  type ScenarioResult,
  startWorker,
  statementFigures,
} from '../harness.ts'
import { insertInBatches } from '../load.ts'
import { sampleMemory } from '../proc.ts'
import { mib, perSecond, round } from '../stats.ts'

/**
 * Commits `backlogRows` changes with no worker running, then starts one: how fast it drains the
 * backlog and how much memory it takes doing so (sampled from /proc, so it is the worker's own).
 */
export async function runBacklog(ctx: BenchContext): Promise<ScenarioResult> {
  const rows = ctx.options.backlogRows
  const { pool } = ctx.db
  await resetTables(pool)
  await clearJobs(pool)
  await watchBenchTable(pool)
  ctx.note(`backlog: committing ${rows} changes with the worker stopped`)
  await insertInBatches(ctx.db.url, rows)
  const waiting = await undispatchedCount(pool)
  if (waiting !== rows) throw new Error(`expected ${rows} undispatched changes, found ${waiting}`)

  ctx.note('backlog: starting the worker')
  ctx.receiver.reset()
  const spawnedAt = performance.now()
  const worker = await startWorker(ctx, false)
  const memory = sampleMemory(worker.pid, 250)
  try {
    const last = await awaitDeliveries(ctx, worker, rows)
    const mem = memory.stop()
    const probe = await worker.probe()
    let first = Number.POSITIVE_INFINITY
    for (const at of ctx.receiver.arrivals.values()) first = Math.min(first, at)
    const drainRate = perSecond(rows, last - first)
    return {
      figures: {
        rows,
        startupToFirstDeliveryMs: round(first - spawnedAt, 0),
        drainSeconds: round((last - first) / 1000, 2),
        drainPerSecond: drainRate,
        spawnToDrainedSeconds: round((last - spawnedAt) / 1000, 2),
        peakRssMiB: mib(Math.max(mem.peakRssBytes, mem.hwmBytes)),
        sampledPeakRssMiB: mib(mem.peakRssBytes),
        vmHwmMiB: mib(mem.hwmBytes),
        duplicates: ctx.receiver.duplicates,
        ...statementFigures(probe, rows),
      },
      rows: [
        { metric: `drain rate (${rows} changes)`, value: fmt(drainRate, '/s') },
        { metric: 'worker spawn → first delivery', value: fmt(first - spawnedAt, 'ms', 0) },
        { metric: 'worker peak RSS (VmHWM)', value: fmt(mib(mem.hwmBytes), 'MiB') },
      ],
    }
  } finally {
    memory.stop()
    await worker.stop()
  }
}
