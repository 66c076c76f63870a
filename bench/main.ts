/**
 * `npm run bench`: end-to-end and micro benchmarks (docs/performance.md). Figures that depend on
 * the machine are reported beside a baseline taken in the same run; exits non-zero only when the
 * pipeline itself breaks (a delivery missing, a worker crash), never because of a timing.
 */
import {
  clearJobs,
  createBenchDatabase,
  postmasterPid,
  provideServer,
  type Server,
  serverVersion,
} from './database.ts'
import type { BenchContext, ScenarioResult } from './harness.ts'
import { type BenchOptions, parseOptions, type ScenarioName } from './options.ts'
import { enableStatementStats } from './pg-stats.ts'
import { childPids, renice } from './proc.ts'
import { renderProfile, summarizeProfiles } from './profile.ts'
import { startReceiver } from './receiver.ts'
import { describeMachine, type Report, renderMachine, renderTable, writeReport } from './results.ts'
import { runBackfill } from './scenarios/backfill.ts'
import { runBacklog } from './scenarios/backlog.ts'
import { runBulk } from './scenarios/bulk.ts'
import { runCli } from './scenarios/cli.ts'
import { runLatency } from './scenarios/latency.ts'
import { runMicro } from './scenarios/micro.ts'
import { runPeers } from './scenarios/peers.ts'
import { runReplay } from './scenarios/replay.ts'
import { runSoak } from './scenarios/soak.ts'
import { runThroughput } from './scenarios/throughput.ts'
import { migrateWith, profileDir, stopWorkers, writeBenchObserver } from './worker.ts'

const scenarios: Record<ScenarioName, (ctx: BenchContext) => Promise<ScenarioResult>> = {
  micro: runMicro,
  throughput: runThroughput,
  latency: runLatency,
  bulk: runBulk,
  backlog: runBacklog,
  soak: runSoak,
  cli: runCli,
  peers: runPeers,
  replay: runReplay,
  backfill: runBackfill,
}

const note = (message: string) => process.stderr.write(`# ${message}\n`)

async function runAll(options: BenchOptions, report: Report, ctx: BenchContext) {
  const done: Array<[ScenarioName, ScenarioResult]> = []
  for (const name of options.scenarios) {
    const result = await scenarios[name](ctx).catch((err: unknown) => {
      report.scenarios[name] = { error: err instanceof Error ? err.message : String(err) }
      throw err
    })
    report.scenarios[name] = result.figures
    done.push([name, result])
    await clearJobs(ctx.db.pool)
  }
  return done
}

function readOptions(): BenchOptions | number {
  try {
    return parseOptions(process.argv.slice(2)) ?? 0
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)} (see --help)`)
    return 2
  }
}

/** Database, receiver and observer for the run; with --nice, our processes run at that niceness. */
async function prepare(options: BenchOptions, server: Server): Promise<BenchContext> {
  const db = await createBenchDatabase(server.adminUrl, (url) => migrateWith(options.workers[0]?.root, url))
  const receiver = await startReceiver(options.receiverDelayMs)
  const ctx: BenchContext = {
    options,
    db,
    receiver,
    observersDir: await writeBenchObserver(receiver.url, {
      rateLimit: options.rateLimit,
      ordered: options.ordered,
    }),
    postmasterPid: await postmasterPid(db.pool),
    statementStats: await enableStatementStats(db.pool),
    note,
  }
  if (options.nice !== undefined) {
    const pm = server.embedded ? ctx.postmasterPid : undefined
    // Backends forked later inherit the postmaster's niceness.
    renice([process.pid, ...(pm ? [pm, ...childPids(pm)] : [])], options.nice)
  }
  return ctx
}

async function printResults(ctx: BenchContext, report: Report, done: Array<[ScenarioName, ScenarioResult]>) {
  console.log(renderMachine(report.machine))
  console.log(renderTable(done))
  for (const [, result] of done) if (result.table) console.log(result.table)
  if (!ctx.options.profile) return
  report.profiles = await summarizeProfiles(profileDir, Date.parse(report.startedAt))
  for (const p of report.profiles) console.log(renderProfile(p))
}

async function main(): Promise<number> {
  const options = readOptions()
  if (typeof options === 'number') return options
  const startedAt = new Date().toISOString()
  const server = await provideServer(process.env)
  const ctx = await prepare(options, server)
  const machine = describeMachine(await serverVersion(ctx.db.pool), server.embedded)
  const report: Report = { startedAt, finishedAt: '', machine, options, scenarios: {} }
  note(renderMachine(machine))
  let code = 0
  try {
    await printResults(ctx, report, await runAll(options, report, ctx))
  } catch (err) {
    code = 1
    console.error(`benchmark failed: ${err instanceof Error ? err.message : String(err)}`)
  } finally {
    report.finishedAt = new Date().toISOString()
    console.log(`results: ${await writeReport(report)}`)
    await stopWorkers()
    await ctx.receiver.close()
    if (options.keep) note(`kept database ${ctx.db.name}`)
    else await ctx.db.drop()
    await server.stop()
  }
  return code
}

process.exitCode = await main()
