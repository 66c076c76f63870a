import path from 'node:path'
import { parseArgs } from 'node:util'

export const scenarioNames = ['micro', 'throughput', 'latency', 'bulk', 'backlog', 'soak'] as const
export type ScenarioName = (typeof scenarioNames)[number]

export interface BenchOptions {
  scenarios: ScenarioName[]
  quick: boolean
  /** Single-row transactions in the throughput scenario. */
  events: number
  /** Concurrent database clients of the load generator. */
  clients: number
  /** Baseline/end-to-end pairs in the throughput scenario; the median pair is reported. */
  repeat: number
  /** Offered rates of the latency scenario, events per second. */
  rates: number[]
  rateSeconds: number
  /** Rows changed by the one bulk statement. */
  bulkRows: number
  /** Changes committed while the worker is stopped, for the backlog scenario. */
  backlogRows: number
  soakSeconds: number
  soakRate: number
  /** Write a V8 CPU profile of every worker child into bench/results/profiles. */
  profile: boolean
  /** Keep the benchmark database instead of dropping it at the end. */
  keep: boolean
  /** Extra environment for the worker child (KEY=VALUE), to compare settings. */
  workerEnv: Record<string, string>
  /** Run the worker from another checkout (e.g. a git worktree), to compare code. */
  workerRoot: string | undefined
  /** Niceness for the benchmark, the worker and an embedded Postgres (negative needs root). */
  nice: number | undefined
}

const usage = `npm run bench -- [options]
  --quick              small N for a 30-60 s smoke (never fails on a timing)
  --only a,b           scenarios: ${scenarioNames.join(', ')} (default: all but soak)
  --events N           throughput: single-row transactions (default 5000)
  --clients K          concurrent load-generator clients (default 8)
  --repeat R           throughput: baseline/end-to-end pairs, median reported (default 3)
  --rates r1,r2        latency: offered events/s (default 200,500)
  --rate-seconds S     latency: seconds per rate (default 10)
  --bulk-rows N        bulk: rows changed by one statement (default 100000)
  --backlog-rows N     backlog: changes committed with the worker stopped (default 100000)
  --soak S             run the soak scenario for S seconds (default 600 when picked with --only)
  --soak-rate R        soak: offered events/s (default 200)
  --worker-env K=V     extra environment for the worker child (repeatable)
  --worker-root DIR    run the worker from another checkout of this project
  --nice=N             run bench, worker and embedded Postgres at niceness N (e.g. -10 as root)
  --profile            write worker CPU profiles to bench/results/profiles
  --keep               keep the benchmark database`

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${value}"`)
  return n
}

function niceness(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < -20 || n > 19) throw new Error(`--nice must be -20..19, got "${value}"`)
  return n
}

function pickScenarios(only: string | undefined, soak: boolean): ScenarioName[] {
  if (only === undefined) return scenarioNames.filter((s) => s !== 'soak' || soak)
  const picked = only.split(',').map((s) => s.trim())
  for (const s of picked) {
    if (!(scenarioNames as readonly string[]).includes(s))
      throw new Error(`unknown scenario "${s}"; pick from ${scenarioNames.join(', ')}`)
  }
  return scenarioNames.filter((s) => picked.includes(s))
}

function envPairs(pairs: string[]): Record<string, string> {
  return Object.fromEntries(
    pairs.map((p) => {
      const eq = p.indexOf('=')
      if (eq < 1) throw new Error(`--worker-env expects KEY=VALUE, got "${p}"`)
      return [p.slice(0, eq), p.slice(eq + 1)]
    }),
  )
}

/** Returns undefined (after printing usage) for --help. */
export function parseOptions(argv: string[]): BenchOptions | undefined {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      events: { type: 'string' },
      clients: { type: 'string' },
      repeat: { type: 'string' },
      rates: { type: 'string' },
      'rate-seconds': { type: 'string' },
      'bulk-rows': { type: 'string' },
      'backlog-rows': { type: 'string' },
      soak: { type: 'string' },
      'soak-rate': { type: 'string' },
      'worker-env': { type: 'string', multiple: true, default: [] },
      'worker-root': { type: 'string' },
      nice: { type: 'string' },
      profile: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (v.help) {
    console.log(usage)
    return undefined
  }
  const q = v.quick
  const rates = (v.rates ?? (q ? '100' : '200,500')).split(',').map((r) => positiveInt('rates', r, 0))
  return {
    scenarios: pickScenarios(v.only, v.soak !== undefined),
    quick: q,
    events: positiveInt('events', v.events, q ? 500 : 5000),
    clients: positiveInt('clients', v.clients, q ? 4 : 8),
    repeat: positiveInt('repeat', v.repeat, q ? 1 : 3),
    rates,
    rateSeconds: positiveInt('rate-seconds', v['rate-seconds'], q ? 3 : 10),
    bulkRows: positiveInt('bulk-rows', v['bulk-rows'], q ? 2000 : 100_000),
    backlogRows: positiveInt('backlog-rows', v['backlog-rows'], q ? 2000 : 100_000),
    soakSeconds: positiveInt('soak', v.soak, q ? 20 : 600),
    soakRate: positiveInt('soak-rate', v['soak-rate'], q ? 50 : 200),
    profile: v.profile,
    keep: v.keep,
    workerEnv: envPairs(v['worker-env']),
    workerRoot: v['worker-root'] === undefined ? undefined : path.resolve(v['worker-root']),
    nice: v.nice === undefined ? undefined : niceness(v.nice),
  }
}
