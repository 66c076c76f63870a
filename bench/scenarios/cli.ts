import { spawn } from 'node:child_process'
import path from 'node:path'
import type { BenchContext, ScenarioResult } from '../harness.ts'
import { fmt } from '../harness.ts'
import { distribution, round } from '../stats.ts'

const root = path.resolve(import.meta.dirname, '../..')
const bin = path.join(root, 'bin/observers.js')
const goalMs = 1000

/** The commands an operator types in an incident, each answered from a fresh process. */
const commands: ReadonlyArray<{ label: string; args: string[] }> = [
  { label: 'observers --help', args: ['--help'] },
  { label: 'observers validate', args: ['validate', path.join(root, 'observers/examples')] },
  { label: 'observers dlq list', args: ['dlq', 'list'] },
]

/** Wall time of one run of the installed bin, from spawn to exit; a failing command fails the scenario. */
function timeRun(args: string[], databaseUrl: string): Promise<number> {
  const started = performance.now()
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code === 0) resolve(performance.now() - started)
      else reject(new Error(`observers ${args.join(' ')} exited ${code}:\n${stderr}`))
    })
  })
}

/** Start-up latency of the CLI: --help, validate and dlq list against the bench database. */
export async function runCli(ctx: BenchContext): Promise<ScenarioResult> {
  const runs = ctx.options.quick ? 3 : 10
  ctx.note(`cli: ${runs} runs of each command`)
  const figures: Record<string, unknown> = { runs }
  const rows: ScenarioResult['rows'] = []
  for (const { label, args } of commands) {
    const times: number[] = []
    // Runs one after another: in parallel they would measure the machine's contention instead.
    for (let i = 0; i < runs; i++) times.push(await timeRun(args, ctx.db.url))
    const d = distribution(times)
    figures[label] = { medianMs: round(d.p50, 0), minMs: round(d.min, 0), maxMs: round(d.max, 0) }
    rows.push({
      metric: `${label} (median of ${runs}, min ${fmt(d.min, 'ms', 0)})`,
      value: fmt(d.p50, 'ms', 0),
      goal: `< ${goalMs} ms`,
      met: d.p50 < goalMs,
    })
  }
  return { figures, rows }
}
