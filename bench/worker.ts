import { type ChildProcess, spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { benchTable } from './database.ts'
import type { ProbeReport } from './probe.ts'

const root = path.resolve(import.meta.dirname, '..')
export const probePath = path.join(root, 'bench/probe.ts')
export const profileDir = path.join(root, 'bench/results/profiles')

/**
 * The one observer every end-to-end scenario runs: a plain webhook to the local receiver
 * (`--rate-limit` sets its rate_limit, `--ordered` its ordering).
 */
export async function writeBenchObserver(
  receiverUrl: string,
  opts: { rateLimit?: number | undefined; ordered?: boolean } = {},
): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'observers-bench-'))
  const observer = {
    name: 'bench-webhook',
    entity: benchTable,
    events: ['INSERT', 'UPDATE'],
    ...(opts.ordered ? { ordering: 'entity' } : {}),
    actions: [
      {
        type: 'webhook',
        url: receiverUrl,
        ...(opts.rateLimit === undefined ? {} : { rate_limit: { per_second: opts.rateLimit } }),
      },
    ],
  }
  await writeFile(path.join(dir, 'bench-webhook.json'), JSON.stringify(observer, null, 2))
  return dir
}

/**
 * Creates pg-boss's schema and applies the migrations with the same checkout that will run the
 * worker (`observers migrate`), so a worker from another checkout finds the schema it expects.
 */
export async function migrateWith(workerRoot: string | undefined, databaseUrl: string): Promise<void> {
  const cwd = workerRoot ?? root
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(cwd, 'src/cli/main.ts'), 'migrate'], {
    cwd,
    env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output = collectOutput(child)
  const code = await exitOf(child)
  if (code !== 0) throw new Error(`observers migrate failed (exit ${code}):\n${output()}`)
}

export interface WorkerSpec {
  databaseUrl: string
  observersDir: string
  env: Record<string, string>
  profile: boolean
  /** The checkout whose src/cli/main.ts runs; this one by default. */
  root: string | undefined
}

/** The worker as a child process, so its CPU and memory are its own. */
export interface WorkerProcess {
  readonly pid: number
  /** Rejects if the worker exits before stop() was called. */
  readonly crashed: Promise<never>
  probe(): Promise<ProbeReport>
  /** SIGTERM, as a process manager would; resolves with the exit code. */
  stop(): Promise<number | null>
  output(): string
}

// The tail of a child's output kept for error messages: at the default log level a worker
// writes a line per delivery, which the benchmark must not spend its own CPU splitting.
const outputTailChars = 64 * 1024

function collectOutput(child: ChildProcess): () => string {
  let tail = ''
  const keep = (d: Buffer) => {
    tail += d.toString('utf8')
    if (tail.length > 2 * outputTailChars) tail = tail.slice(-outputTailChars)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return () => tail.slice(-outputTailChars).split('\n').filter(Boolean).slice(-200).join('\n')
}

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)))
}

// Workers not stopped yet: a scenario that throws leaves its worker running, and the benchmark
// must not hang on it (nor drop the database under it) on the way out.
const running = new Set<WorkerProcess>()

/** Stops every worker a scenario left running. */
export async function stopWorkers(): Promise<void> {
  await Promise.all([...running].map((w) => w.stop()))
}

/**
 * The Node flags of a checkout's `npm start` (`node <flags> bin/observers.js start`, or
 * `src/cli/main.ts` in older checkouts), so the benchmark runs the worker the way users do,
 * whichever checkout it measures. The bin registers tsx itself; main.ts needs it as a flag.
 */
async function startFlags(cwd: string): Promise<string[]> {
  const pkg = JSON.parse(await readFile(path.join(cwd, 'package.json'), 'utf8')) as {
    scripts?: Record<string, string>
  }
  const m = /\bnode (.*?)\s*(src\/cli\/main\.ts|bin\/observers\.js) start/.exec(pkg.scripts?.start ?? '')
  if (!m) throw new Error(`${cwd}/package.json: no "node … bin/observers.js start" start script`)
  const flags = (m[1] ?? '').split(/\s+/).filter(Boolean)
  return flags.includes('tsx') ? flags : [...flags, '--import', 'tsx']
}

export async function spawnWorker(spec: WorkerSpec): Promise<WorkerProcess> {
  if (spec.profile) await mkdir(profileDir, { recursive: true })
  const cwd = spec.root ?? root
  const flags = [...(await startFlags(cwd)), '--import', probePath]
  if (spec.profile) flags.push('--cpu-prof', '--cpu-prof-dir', profileDir)
  const child = spawn(process.execPath, [...flags, path.join(cwd, 'src/cli/main.ts'), 'start'], {
    cwd,
    env: {
      ...process.env,
      DATABASE_URL: spec.databaseUrl,
      OBSERVERS_DIR: spec.observersDir,
      PORT: '0',
      ...spec.env,
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  return probedProcess(child)
}

/** A child that preloads bench/probe.ts: its probe, its exit, and SIGTERM to stop it. */
export function probedProcess(child: ChildProcess): WorkerProcess {
  const output = collectOutput(child)
  let stopping = false
  const exit = exitOf(child)
  const crashed = exit.then((code) => {
    if (!stopping) throw new Error(`worker exited unexpectedly (code ${code}):\n${output()}`)
    return new Promise<never>(() => {})
  })
  crashed.catch(() => {})
  const worker: WorkerProcess = {
    pid: child.pid ?? 0,
    crashed,
    output,
    probe: () => askProbe(child),
    async stop() {
      stopping = true
      running.delete(worker)
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
      const code = await exit
      clearTimeout(timer)
      return code
    },
  }
  running.add(worker)
  return worker
}

function askProbe(child: ChildProcess): Promise<ProbeReport> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage)
      reject(new Error('worker probe did not answer within 5 s'))
    }, 5000)
    const onMessage = (msg: unknown) => {
      const probe = (msg as { probe?: ProbeReport } | null)?.probe
      if (!probe) return
      clearTimeout(timer)
      child.off('message', onMessage)
      resolve(probe)
    }
    child.on('message', onMessage)
    child.send('probe:report')
  })
}
