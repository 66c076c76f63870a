import { setTimeout as delay } from 'node:timers/promises'
import { measureIdle, startCpuMeter } from '../cpu.ts'
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
import type { WorkerVariant } from '../options.ts'
import { resetStatementStats, statementCosts } from '../pg-stats.ts'
import { pipelineStages } from '../stages.ts'
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
  await resetStatementStats(ctx.db.pool, ctx.statementStats)
  const cpu = startCpuMeter(ctx.postmasterPid, worker.pid)
  const run = await insertAtRate(load, rate, seconds)
  await awaitDeliveries(ctx, worker, run.commits.size)
  const split = cpu(run.commits.size)
  const probe = await worker.probe()
  const statements = await statementCosts(ctx.db.pool, ctx.statementStats, run.commits.size)
  const d = distribution(latencies(run, ctx.receiver.arrivals))
  const stages = await pipelineStages(ctx.db.pool, run.commits, ctx.receiver.arrivals)
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
    stagesMs: stages,
    workerLoopDelayMs: probe.loopDelayMs,
    cpu: split,
    ...statementFigures(probe, d.count),
    serverStatements: statements,
  }
}

function rowsFor(r: Awaited<ReturnType<typeof oneRate>>, label: string): Row[] {
  const l = r.latencyMs
  const judged = r.offeredPerSecond === goals.rate
  const at = `${label}@${r.offeredPerSecond}/s`
  return [
    { metric: `${at} achieved rate`, value: fmt(r.achievedPerSecond, '/s') },
    {
      metric: `${at} p50`,
      value: fmt(l.p50, 'ms', 2),
      ...(judged ? { goal: `< ${goals.p50Ms} ms`, met: l.p50 < goals.p50Ms } : {}),
    },
    { metric: `${at} p95`, value: fmt(l.p95, 'ms', 2) },
    {
      metric: `${at} p99`,
      value: fmt(l.p99, 'ms', 2),
      ...(judged ? { goal: `< ${goals.p99Ms} ms`, met: l.p99 < goals.p99Ms } : {}),
    },
    { metric: `${at} max`, value: fmt(l.max, 'ms', 2) },
    ...(r.stagesMs
      ? (['p50', 'p99'] as const).map((p) => ({
          metric: `${at} ${p} by stage: →dispatch / →fetch / →received`,
          value: [r.stagesMs?.dispatch, r.stagesMs?.fetch, r.stagesMs?.deliver]
            .map((s) => fmt(s?.[p] ?? Number.NaN, '', 1))
            .join(' / '),
        }))
      : []),
  ]
}

/** Idle cost, then each offered rate in turn, on one worker. */
async function measureWorker(ctx: BenchContext, load: LoadClients, variant: WorkerVariant, label: string) {
  await resetTables(ctx.db.pool)
  await clearJobs(ctx.db.pool)
  const worker = await startWorker(ctx, true, variant)
  try {
    const idleSeconds = ctx.options.quick ? 3 : 10
    ctx.note(`latency: ${label}idle cost first, ${idleSeconds} s with nothing to deliver`)
    const idle = await measureIdle(ctx.postmasterPid, worker, idleSeconds)
    const rates = []
    for (const rate of ctx.options.rates) {
      rates.push(await oneRate(ctx, worker, load, rate))
      await delay(1000)
    }
    const rows: Row[] = [
      {
        metric: `${label}idle worker: CPU % of a core (pg / worker)`,
        value: `${idle.postgresPercent ?? 'n/a'} / ${idle.workerPercent}`,
      },
      { metric: `${label}idle worker: SQL statements/s`, value: fmt(idle.workerStatementsPerSecond, '/s') },
      ...rates.flatMap((r) => rowsFor(r, label)),
    ]
    return { figures: { ...variant, idle, rates }, rows }
  } finally {
    await worker.stop()
  }
}

/** Steady offered load at each rate; per-event commit→receive latency percentiles. */
export async function runLatency(ctx: BenchContext): Promise<ScenarioResult> {
  const load = await connectClients(ctx.db.url, ctx.options.clients)
  try {
    const several = ctx.options.workers.length > 1
    const measured = []
    for (const variant of ctx.options.workers) {
      measured.push(await measureWorker(ctx, load, variant, several ? `[${variant.label}] ` : ''))
    }
    const [first] = measured
    return {
      figures: {
        clients: ctx.options.clients,
        idle: first?.figures.idle,
        rates: first?.figures.rates,
        ...(several ? { variants: measured.map((m) => m.figures) } : {}),
      },
      rows: measured.flatMap((m) => m.rows),
    }
  } finally {
    await load.close()
  }
}
