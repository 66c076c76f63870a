import path from 'node:path'
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util'

export const scenarioNames = [
  'micro',
  'throughput',
  'latency',
  'bulk',
  'backlog',
  'soak',
  'cli',
  'peers',
  'replay',
  'backfill',
] as const
export type ScenarioName = (typeof scenarioNames)[number]

export interface WorkerVariant {
  label: string
  /** The checkout whose worker runs; this one when undefined. */
  root: string | undefined
  env: Record<string, string>
}

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
  /**
   * With counts, the backlog scenario instead starts that many worker processes, lets them share
   * the dispatch partitions, and commits the backlog at once: one drain per count.
   */
  processes: number[]
  soakSeconds: number
  soakRate: number
  /** Changes in the log that the replay scenario's dry run reads. */
  replayChanges: number
  /** Rows the backfill scenario backfills. */
  backfillRows: number
  /** Seconds the backfill scenario measures the application alone. */
  backfillBaselineSeconds: number
  /** Seconds the backfill runs between two measurements of the application alone; 0: it is not stopped. */
  backfillIntervalSeconds: number
  /** Extra arguments for `observers backfill` (`--backfill-arg=--pause-ms=50`). */
  backfillArgs: string[]
  /** Write a V8 CPU profile of every worker child into bench/results/profiles. */
  profile: boolean
  /** Keep the benchmark database instead of dropping it at the end. */
  keep: boolean
  /**
   * The worker to measure (`--worker-root`, `--worker-env`) and, with `--compare-root` or
   * `--compare-env`, a second one that throughput and latency measure alongside it.
   */
  workers: WorkerVariant[]
  /** The receiver answers after this many ms (0: at once). */
  receiverDelayMs: number
  /** The bench observer's rate_limit, deliveries per second (none when undefined). */
  rateLimit: number | undefined
  /** The bench observer orders each row's deliveries (`ordering: entity`). */
  ordered: boolean
  /** Niceness for the benchmark, the worker and an embedded Postgres (negative needs root). */
  nice: number | undefined
}

const usage = `npm run bench -- [options]
  --quick              small N for a 30-60 s smoke (never fails on a timing)
  --only a,b           scenarios: ${scenarioNames.join(', ')}
                       (default: all but soak, peers, replay and backfill; --quick also skips cli)
  --peers              also run the peers scenario: graphile-worker and plain pg-boss on the same workloads
  --events N           throughput: single-row transactions (default 5000)
  --clients K          concurrent load-generator clients (default 8)
  --repeat R           throughput: baseline/end-to-end pairs, median reported (default 3)
  --rates r1,r2        latency: offered events/s (default 200,500)
  --rate-seconds S     latency: seconds per rate (default 10)
  --bulk-rows N        bulk: rows changed by one statement (default 100000)
  --backlog-rows N     backlog: changes committed with the worker stopped (default 100000)
  --processes 1,2,4    backlog: drain with this many worker processes each, sharing the dispatch
                       partitions; the backlog commits at once once all are up (default: off)
  --soak S             run the soak scenario for S seconds (default 600 when picked with --only)
  --soak-rate R        soak: offered events/s (default 200)
  --replay-changes N   replay: changes a dry run reads (default 1000000)
  --backfill-rows N    backfill: rows backfilled while the application writes (default 1000000)
  --backfill-baseline S  backfill: seconds the application is measured alone (default 20)
  --backfill-interval S  backfill: seconds it runs between two measurements alone, stopped
                       and resumed (default 120; 0: never stopped)
  --backfill-arg=A     backfill: an argument for observers backfill, e.g. --backfill-arg=--pause-ms=0 (repeatable)
  --worker-env K=V     extra environment for the worker child (repeatable)
  --worker-root DIR    run the worker from another checkout of this project
  --compare-env K=V    throughput and latency also measure a second worker with this env (repeatable)
  --compare-root DIR   ... or one from this checkout, interleaved with the first
  --receiver-delay MS  the receiver answers after MS ms (default 0: at once)
  --rate-limit N       the bench observer's action gets rate_limit { per_second: N }
  --ordered            the bench observer gets ordering: entity (its jobs go to the ordered queue)
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

// Minutes each, so only when asked for by name (soak and peers also by their own flags).
const optIn: readonly ScenarioName[] = ['soak', 'peers', 'replay', 'backfill']

function pickScenarios(
  only: string | undefined,
  extra: { soak: boolean; peers: boolean },
  quick: boolean,
): ScenarioName[] {
  // cli spawns tens of processes one after another: too slow for a quick smoke.
  if (only === undefined)
    return scenarioNames.filter(
      (s) =>
        (!optIn.includes(s) || (s === 'soak' && extra.soak) || (s === 'peers' && extra.peers)) &&
        (s !== 'cli' || !quick),
    )
  const picked = only.split(',').map((s) => s.trim())
  for (const s of picked) {
    if (!(scenarioNames as readonly string[]).includes(s))
      throw new Error(`unknown scenario "${s}"; pick from ${scenarioNames.join(', ')}`)
  }
  return scenarioNames.filter((s) => picked.includes(s) || (s === 'peers' && extra.peers))
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

function workerVariants(v: {
  'worker-env': string[]
  'worker-root'?: string | undefined
  'compare-env'?: string[] | undefined
  'compare-root'?: string | undefined
}): WorkerVariant[] {
  const root = (dir: string | undefined) => (dir === undefined ? undefined : path.resolve(dir))
  const a = { label: 'A', root: root(v['worker-root']), env: envPairs(v['worker-env']) }
  if (v['compare-env'] === undefined && v['compare-root'] === undefined) return [a]
  return [a, { label: 'B', root: root(v['compare-root']) ?? a.root, env: envPairs(v['compare-env'] ?? []) }]
}

const flags = {
  quick: { type: 'boolean', default: false },
  only: { type: 'string' },
  events: { type: 'string' },
  clients: { type: 'string' },
  repeat: { type: 'string' },
  rates: { type: 'string' },
  'rate-seconds': { type: 'string' },
  'bulk-rows': { type: 'string' },
  'backlog-rows': { type: 'string' },
  processes: { type: 'string' },
  soak: { type: 'string' },
  'soak-rate': { type: 'string' },
  'replay-changes': { type: 'string' },
  'backfill-rows': { type: 'string' },
  'backfill-baseline': { type: 'string' },
  'backfill-interval': { type: 'string' },
  'backfill-arg': { type: 'string', multiple: true, default: [] },
  'worker-env': { type: 'string', multiple: true, default: [] },
  'worker-root': { type: 'string' },
  'compare-env': { type: 'string', multiple: true },
  'compare-root': { type: 'string' },
  nice: { type: 'string' },
  'receiver-delay': { type: 'string' },
  'rate-limit': { type: 'string' },
  ordered: { type: 'boolean', default: false },
  peers: { type: 'boolean', default: false },
  profile: { type: 'boolean', default: false },
  keep: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} satisfies ParseArgsOptionsConfig

/** Returns undefined (after printing usage) for --help. */
export function parseOptions(argv: string[]): BenchOptions | undefined {
  const { values: v } = parseArgs({
    args: argv,
    options: flags,
  })
  if (v.help) {
    console.log(usage)
    return undefined
  }
  const q = v.quick
  const rates = (v.rates ?? (q ? '100' : '200,500')).split(',').map((r) => positiveInt('rates', r, 0))
  return {
    scenarios: pickScenarios(v.only, { soak: v.soak !== undefined, peers: v.peers }, q),
    quick: q,
    events: positiveInt('events', v.events, q ? 500 : 5000),
    clients: positiveInt('clients', v.clients, q ? 4 : 8),
    repeat: positiveInt('repeat', v.repeat, q ? 1 : 3),
    rates,
    rateSeconds: positiveInt('rate-seconds', v['rate-seconds'], q ? 3 : 10),
    bulkRows: positiveInt('bulk-rows', v['bulk-rows'], q ? 2000 : 100_000),
    backlogRows: positiveInt('backlog-rows', v['backlog-rows'], q ? 2000 : 100_000),
    processes:
      v.processes === undefined ? [] : v.processes.split(',').map((p) => positiveInt('processes', p, 0)),
    soakSeconds: positiveInt('soak', v.soak, q ? 20 : 600),
    soakRate: positiveInt('soak-rate', v['soak-rate'], q ? 50 : 200),
    replayChanges: positiveInt('replay-changes', v['replay-changes'], q ? 20_000 : 1_000_000),
    backfillRows: positiveInt('backfill-rows', v['backfill-rows'], q ? 20_000 : 1_000_000),
    backfillBaselineSeconds: positiveInt('backfill-baseline', v['backfill-baseline'], q ? 5 : 20),
    backfillIntervalSeconds:
      v['backfill-interval'] === '0'
        ? 0
        : positiveInt('backfill-interval', v['backfill-interval'], q ? 10 : 120),
    backfillArgs: v['backfill-arg'],
    profile: v.profile,
    keep: v.keep,
    workers: workerVariants(v),
    receiverDelayMs:
      v['receiver-delay'] === undefined ? 0 : positiveInt('receiver-delay', v['receiver-delay'], 0),
    nice: v.nice === undefined ? undefined : niceness(v.nice),
    rateLimit: v['rate-limit'] === undefined ? undefined : positiveInt('rate-limit', v['rate-limit'], 0),
    ordered: v.ordered,
  }
}
