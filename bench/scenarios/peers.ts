import Table from 'cli-table3'
import { type CpuSplit, startCpuMeter } from '../cpu.ts'
import { benchTable, clearJobs, resetTables, unwatchBenchTable, watchBenchTable } from '../database.ts'
import {
  awaitDeliveries,
  type BenchContext,
  fmt,
  type Row,
  type ScenarioResult,
  startWorker,
  warmUpThrough,
} from '../harness.ts'
import { connectClients, insertAsFastAsPossible, insertAtRate, type LoadClients } from '../load.ts'
import { peer as graphileWorker } from '../peers/graphile-worker.ts'
import type { Peer } from '../peers/peer.ts'
import { peer as pgBoss } from '../peers/pg-boss.ts'
import { spawnPeer } from '../peers/process.ts'
import { warmUpNote } from '../receiver.ts'
import { pipelineStages } from '../stages.ts'
import { distribution, perSecond, round } from '../stats.ts'
import type { WorkerProcess } from '../worker.ts'

/** Something that delivers the bench table's changes: pg-observers itself or a peer. */
interface Contender {
  name: string
  install(ctx: BenchContext): Promise<void>
  uninstall(ctx: BenchContext): Promise<void>
  start(ctx: BenchContext): Promise<WorkerProcess>
}

const pgObservers: Contender = {
  name: 'pg-observers',
  install: (ctx) => watchBenchTable(ctx.db.pool),
  uninstall: (ctx) => unwatchBenchTable(ctx.db.pool),
  start: (ctx) => startWorker(ctx),
}

function contender(peer: Peer, file: string): Contender {
  return {
    name: peer.name,
    install: (ctx) => peer.install(ctx.db.pool, ctx.db.url),
    uninstall: (ctx) => peer.uninstall(ctx.db.pool),
    async start(ctx) {
      const proc = await spawnPeer(file, ctx.db.url, ctx.receiver.url)
      await warmUpThrough(ctx, proc)
      return proc
    },
  }
}

const contenders = [pgObservers, contender(graphileWorker, 'graphile-worker'), contender(pgBoss, 'pg-boss')]

/** CPU µs per delivered event of the consumer plus what Postgres spent beyond the capture-only run. */
function pipelineUs(cpu: CpuSplit, baseline: CpuSplit): number | null {
  if (cpu.workerUsPerEvent === null) return null
  return cpu.workerUsPerEvent + (cpu.postgresUsPerEvent ?? 0) - (baseline.postgresUsPerEvent ?? 0)
}

async function throughput(ctx: BenchContext, proc: WorkerProcess, load: LoadClients) {
  const n = ctx.options.events
  const cpu = startCpuMeter(ctx.postmasterPid, proc.pid)
  const run = await insertAsFastAsPossible(load, n)
  const last = await awaitDeliveries(ctx, proc, n)
  const split = cpu(n)
  const probe = await proc.probe()
  return {
    rate: perSecond(n, last - run.firstCommitAt),
    commitRate: perSecond(n, run.lastCommitAt - run.firstCommitAt),
    cpu: split,
    statementsPerEvent: round(probe.statements / n, 2),
  }
}

/** One UPDATE of every measured row (the throughput run's), statement start → last delivery. */
async function bulk(ctx: BenchContext, proc: WorkerProcess) {
  ctx.receiver.reset()
  const started = performance.now()
  const { rowCount } = await ctx.db.pool.query(
    `update ${benchTable} set amount = amount + 1 where note <> $1`,
    [warmUpNote],
  )
  const statementMs = performance.now() - started
  const rows = rowCount ?? 0
  const last = await awaitDeliveries(ctx, proc, rows)
  return { rows, statementMs: round(statementMs, 1), seconds: round((last - started) / 1000, 2) }
}

async function latency(
  ctx: BenchContext,
  c: Contender,
  proc: WorkerProcess,
  load: LoadClients,
  rate: number,
) {
  ctx.receiver.reset()
  const run = await insertAtRate(load, rate, ctx.options.rateSeconds)
  await awaitDeliveries(ctx, proc, run.commits.size)
  const out: number[] = []
  for (const [id, at] of run.commits) {
    const arrived = ctx.receiver.arrivals.get(id)
    if (arrived !== undefined) out.push(arrived - at)
  }
  const d = distribution(out)
  // Only pg-observers' jobs are in pgboss.job (the pg-boss peer has its own schema).
  const stages =
    c === pgObservers ? await pipelineStages(ctx.db.pool, run.commits, ctx.receiver.arrivals) : undefined
  return { rate, p50Ms: round(d.p50, 2), p99Ms: round(d.p99, 2), maxMs: round(d.max, 2), stages }
}

async function measure(ctx: BenchContext, c: Contender, load: LoadClients, rate: number) {
  await resetTables(ctx.db.pool)
  await clearJobs(ctx.db.pool)
  await c.install(ctx)
  const proc = await c.start(ctx)
  try {
    ctx.note(`peers: ${c.name}, ${ctx.options.events} transactions from ${ctx.options.clients} clients`)
    const t = await throughput(ctx, proc, load)
    ctx.note(`peers: ${c.name}, one UPDATE of those rows`)
    const b = await bulk(ctx, proc)
    ctx.note(`peers: ${c.name}, ${rate} events/s for ${ctx.options.rateSeconds} s`)
    const l = await latency(ctx, c, proc, load, rate)
    return { name: c.name, throughput: t, bulk: b, latency: l }
  } finally {
    await proc.stop()
    await c.uninstall(ctx)
  }
}

async function captureOnly(ctx: BenchContext, load: LoadClients) {
  await resetTables(ctx.db.pool)
  await watchBenchTable(ctx.db.pool)
  ctx.note(`peers: capture-only baseline, ${ctx.options.events} transactions`)
  const cpu = startCpuMeter(ctx.postmasterPid, undefined)
  const run = await insertAsFastAsPossible(load, ctx.options.events)
  const split = cpu(ctx.options.events)
  await unwatchBenchTable(ctx.db.pool)
  return { rate: perSecond(ctx.options.events, run.lastCommitAt - run.firstCommitAt), cpu: split }
}

type Measured = Awaited<ReturnType<typeof measure>>

function renderPeers(base: Awaited<ReturnType<typeof captureOnly>>, all: Measured[]): string {
  const table = new Table({
    head: ['', 'capture-only', ...all.map((m) => m.name)],
    style: { head: [], border: [] },
  })
  const line = (metric: string, baseline: string, each: (m: Measured) => string) =>
    table.push([
      metric,
      ...[baseline, ...all.map(each)].map((content) => ({ hAlign: 'right' as const, content })),
    ])
  const n = all[0]?.bulk.rows ?? 0
  line('events/s end to end (commits/s)', fmt(base.rate), (m) => fmt(m.throughput.rate))
  line('  ÷ capture-only commits/s', '1', (m) => fmt(m.throughput.rate / base.rate, '', 2))
  line('  application commits/s meanwhile', fmt(base.rate), (m) => fmt(m.throughput.commitRate))
  line('CPU µs/event: Postgres', fmt(base.cpu.postgresUsPerEvent ?? Number.NaN, '', 0), (m) =>
    fmt(m.throughput.cpu.postgresUsPerEvent ?? Number.NaN, '', 0),
  )
  line('CPU µs/event: consumer process', '', (m) =>
    fmt(m.throughput.cpu.workerUsPerEvent ?? Number.NaN, '', 0),
  )
  line('CPU µs/event: pipeline (consumer + added pg)', '', (m) =>
    fmt(pipelineUs(m.throughput.cpu, base.cpu) ?? Number.NaN, '', 0),
  )
  line('consumer SQL statements/event', '', (m) => fmt(m.throughput.statementsPerEvent, '', 2))
  line(`UPDATE of ${n} rows: statement ms`, '', (m) => fmt(m.bulk.statementMs, '', 0))
  line(`UPDATE of ${n} rows: → last delivery s`, '', (m) => fmt(m.bulk.seconds, '', 2))
  const rate = all[0]?.latency.rate ?? 0
  line(`latency @${rate}/s: p50 ms`, '', (m) => fmt(m.latency.p50Ms, '', 1))
  line(`latency @${rate}/s: p99 ms`, '', (m) => fmt(m.latency.p99Ms, '', 1))
  line(`latency @${rate}/s: max ms`, '', (m) => fmt(m.latency.maxMs, '', 1))
  for (const p of ['p50', 'p99'] as const) {
    line(`  ${p} by stage: →dispatch / →fetch / →received`, '', (m) => {
      const s = m.latency.stages
      return s ? [s.dispatch, s.fetch, s.deliver].map((v) => fmt(v[p], '', 1)).join(' / ') : ''
    })
  }
  return table.toString()
}

/**
 * pg-observers against graphile-worker, whose latency is the reference (issue 19's goals);
 * judged only outside --quick, whose few events say nothing about timings.
 */
function latencyRows(all: Measured[], judge: boolean): Row[] {
  const ours = all.find((m) => m.name === pgObservers.name)?.latency
  const gw = all.find((m) => m.name === graphileWorker.name)?.latency
  if (!ours || !gw) return []
  return [
    {
      metric: `pg-observers p50 @${ours.rate}/s ÷ graphile-worker's`,
      value: fmt(ours.p50Ms / gw.p50Ms, '', 2),
      ...(judge ? { goal: '≤ 1.5', met: ours.p50Ms <= 1.5 * gw.p50Ms } : {}),
    },
    {
      metric: `pg-observers p99 @${ours.rate}/s ÷ graphile-worker's`,
      value: fmt(ours.p99Ms / gw.p99Ms, '', 2),
      ...(judge ? { goal: '≤ 1', met: ours.p99Ms <= gw.p99Ms } : {}),
    },
  ]
}

/**
 * The same workloads through pg-observers, graphile-worker and a plain pg-boss pipeline, one
 * after another on the same database and receiver, beside the capture-only commit rate: N
 * single-row transactions from K clients, one UPDATE of those N rows, then an offered rate.
 */
export async function runPeers(ctx: BenchContext): Promise<ScenarioResult> {
  const rate = ctx.options.rates[0] ?? 200
  const load = await connectClients(ctx.db.url, ctx.options.clients)
  try {
    const base = await captureOnly(ctx, load)
    const all: Measured[] = []
    for (const c of contenders) all.push(await measure(ctx, c, load, rate))
    return {
      figures: {
        events: ctx.options.events,
        clients: ctx.options.clients,
        captureOnly: base,
        contenders: all,
      },
      rows: latencyRows(all, !ctx.options.quick),
      table: renderPeers(base, all),
    }
  } finally {
    await load.close()
  }
}
