/**
 * `npm run bench`: end-to-end and micro benchmarks (docs/performance.md). Figures that depend on
 * the machine are reported beside a baseline taken in the same run; exits non-zero only when the
 * pipeline itself breaks (a delivery missing, a worker crash), never because of a timing.
 */
import { clearJobs, createBenchDatabase, postmasterPid, provideServer, serverVersion } from './database.ts'
import type { BenchContext, ScenarioResult } from './harness.ts'
import { type BenchOptions, parseOptions, type ScenarioName } from './options.ts'
import { enableStatementStats } from './pg-stats.ts'
import { childPids, renice } from './proc.ts'
import { startReceiver } from './receiver.ts'
import { describeMachine, type Report, renderMachine, renderTable, writeReport } from './results.ts'
import { runBacklog } from './scenarios/backlog.ts'
import { runBulk } from './scenarios/bulk.ts'
import { runLatency } from './scenarios/latency.ts'
import { runMicro } from './scenarios/micro.ts'
import { runSoak } from './scenarios/soak.ts'
import { runThroughput } from './scenarios/throughput.ts'
import { migrateWith, writeBenchObserver } from './worker.ts'

const scenarios: Record<ScenarioName, (ctx: BenchContext) => Promise<ScenarioResult>> = {
  micro: runMicro,
  throughput: runThroughput,
  latency: runLatency,
  bulk: runBulk,
  backlog: runBacklog,
  soak: runSoak,
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

async function main(): Promise<number> {
  let options: BenchOptions | undefined
  try {
    options = parseOptions(process.argv.slice(2))
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)} (see --help)`)
    return 2
  }
  if (!options) return 0
  const startedAt = new Date().toISOString()
  const server = await provideServer(process.env)
  const db = await createBenchDatabase(server.adminUrl, (url) => migrateWith(options.workerRoot, url))
  const receiver = await startReceiver()
  const ctx: BenchContext = {
    options,
    db,
    receiver,
    observersDir: await writeBenchObserver(receiver.url),
    postmasterPid: await postmasterPid(db.pool),
    statementStats: await enableStatementStats(db.pool),
    note,
  }
  if (options.nice !== undefined) {
    const pm = server.embedded ? ctx.postmasterPid : undefined
    // Backends forked later inherit the postmaster's niceness.
    renice([process.pid, ...(pm ? [pm, ...childPids(pm)] : [])], options.nice)
  }
  const machine = describeMachine(await serverVersion(db.pool), server.embedded)
  const report: Report = { startedAt, finishedAt: '', machine, options, scenarios: {} }
  note(renderMachine(machine))
  let code = 0
  try {
    const done = await runAll(options, report, ctx)
    console.log(renderMachine(machine))
    console.log(renderTable(done))
  } catch (err) {
    code = 1
    console.error(`benchmark failed: ${err instanceof Error ? err.message : String(err)}`)
  } finally {
    report.finishedAt = new Date().toISOString()
    console.log(`results: ${await writeReport(report)}`)
    await receiver.close()
    if (options.keep) note(`kept database ${db.name}`)
    else await db.drop()
    await server.stop()
  }
  return code
}

process.exitCode = await main()
