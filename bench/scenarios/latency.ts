import { setTimeout as delay } from 'node:timers/promises'
import { clearJobs, resetTables } from '../database.ts'
import {
  awaitDeliveries,
  type BenchContext,
  fmt,
  type Row,
  type ScenarioResult,
  startWorker,
  statementFigures,
} from '../harness.ts'
import { connectClients, insertAtRate, type LoadClients, type LoadResult } from '../load.ts'
import { distribution, perSecond, round } from '../stats.ts'
import type { WorkerProcess } from '../worker.ts'

const goals = { rate: 500, p50Ms: 15, p99Ms: 50 }

/** Commit→receive latency of every event, both stamps taken in this process on one clock. */
function latencies(run: LoadResult, arrivals: Map<number, number>): number[] {
  const out: number[] = []
  for (const [id, committedAt] of run.commits) {
    const at = arrivals.get(id)
    if (at !== undefined) out.push(at - committedAt)
  }
  return out
}

async function oneRate(ctx: BenchContext, worker: WorkerProcess, load: LoadClients, rate: number) {
  const seconds = ctx.options.rateSeconds
  ctx.note(`latency: ${rate} events/s for ${seconds} s`)
  ctx.receiver.reset()
  const run = await insertAtRate(load, rate, seconds)
  await awaitDeliveries(ctx, worker, run.commits.size)
  const probe = await worker.probe()
  const d = distribution(latencies(run, ctx.receiver.arrivals))
  const ms = (v: number) => round(v, 2)
  return {
    offeredPerSecond: rate,
    achievedPerSecond: perSecond(run.commits.size, run.lastCommitAt - run.startedAt),
    lateStarts: run.lateStarts,
    latencyMs: {
      p50: ms(d.p50),
      p95: ms(d.p95),
      p99: ms(d.p99),
      max: ms(d.max),
      min: ms(d.min),
      mean: ms(d.mean),
    },
    events: d.count,
    workerLoopDelayMs: probe.loopDelayMs,
    ...statementFigures(probe, d.count),
  }
}

function rowsFor(r: Awaited<ReturnType<typeof oneRate>>): Row[] {
  const l = r.latencyMs
  const judged = r.offeredPerSecond === goals.rate
  return [
    { metric: `@${r.offeredPerSecond}/s achieved rate`, value: fmt(r.achievedPerSecond, '/s') },
    {
      metric: `@${r.offeredPerSecond}/s p50`,
      value: fmt(l.p50, 'ms', 2),
      ...(judged ? { goal: `< ${goals.p50Ms} ms`, met: l.p50 < goals.p50Ms } : {}),
    },
    { metric: `@${r.offeredPerSecond}/s p95`, value: fmt(l.p95, 'ms', 2) },
    {
      metric: `@${r.offeredPerSecond}/s p99`,
      value: fmt(l.p99, 'ms', 2),
      ...(judged ? { goal: `< ${goals.p99Ms} ms`, met: l.p99 < goals.p99Ms } : {}),
    },
    { metric: `@${r.offeredPerSecond}/s max`, value: fmt(l.max, 'ms', 2) },
  ]
}

/** Steady offered load at each rate; per-event commit→receive latency percentiles. */
export async function runLatency(ctx: BenchContext): Promise<ScenarioResult> {
  await resetTables(ctx.db.pool)
  await clearJobs(ctx.db.pool)
  const load = await connectClients(ctx.db.url, ctx.options.clients)
  const worker = await startWorker(ctx)
  try {
    const results = []
    for (const rate of ctx.options.rates) {
      results.push(await oneRate(ctx, worker, load, rate))
      await delay(1000)
    }
    return { figures: { clients: ctx.options.clients, rates: results }, rows: results.flatMap(rowsFor) }
  } finally {
    await worker.stop()
    await load.close()
  }
}
