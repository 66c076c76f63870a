import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import path from 'node:path'
import { listenPort } from './ports.ts'
import { observersDir } from './worker.ts'

const root = path.resolve(import.meta.dirname, '../..')

/** Runs `observers <args>` as a separate process (on Node's own type stripping, as the bin does), for kill and signal tests. */
export function spawnCli(args: string[], env: Record<string, string>): ChildProcess & { output: string[] } {
  const child = spawn(process.execPath, [path.join(root, 'src/cli/main.ts'), ...args], {
    cwd: root,
    env: {
      ...process.env,
      LOG_LEVEL: 'info',
      OBSERVERS_DB_POOL_SIZE: '4',
      OBSERVERS_CONCURRENCY: '8',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildProcess & { output: string[] }
  child.output = []
  // A test file that times out or crashes must not leave a worker running.
  const reap = () => child.kill('SIGKILL')
  process.once('exit', reap)
  child.once('exit', () => process.off('exit', reap))
  child.stdout?.on('data', (d: Buffer) => child.output.push(d.toString('utf8')))
  child.stderr?.on('data', (d: Buffer) => child.output.push(d.toString('utf8')))
  return child
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
}

/** Resolves when the child has logged a line matching `pattern`. */
export async function waitForOutput(
  child: ChildProcess & { output: string[] },
  pattern: RegExp,
  timeoutMs = 60_000,
) {
  const deadline = Date.now() + timeoutMs
  while (!pattern.test(child.output.join(''))) {
    if (Date.now() > deadline)
      throw new Error(`no output matching ${pattern} in ${timeoutMs} ms:\n${child.output.join('')}`)
    if (child.exitCode !== null)
      throw new Error(`process exited (${child.exitCode}):\n${child.output.join('')}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** GET `path` on a worker's ops port: the status and JSON body, or status 0 while nothing answers. */
export async function opsGet(
  port: number | string,
  path: string,
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON bodies
): Promise<{ status: number; body: any }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) })
    const text = await res.text()
    return {
      status: res.status,
      body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text,
    }
  } catch {
    return { status: 0, body: undefined }
  }
}

/**
 * Polls `check` until it returns something other than undefined or false, failing at once if the
 * child exits. The default deadline is generous: on a loaded machine a worker's start alone can
 * take tens of seconds.
 */
export async function untilChild<T>(
  child: ChildProcess & { output: string[] },
  check: () => Promise<T | undefined | false>,
  what: string,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(
        `process exited (${child.exitCode ?? child.signalCode}) before ${what}:\n${child.output.join('')}`,
      )
    if (Date.now() > deadline)
      throw new Error(`no ${what} in ${timeoutMs} ms:\n${child.output.join('').slice(-3000)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Waits until a spawned worker answers GET /readyz with 200: observers loaded, listener connected. */
export function waitUntilReady(child: ChildProcess & { output: string[] }, port: number | string) {
  return untilChild(child, async () => (await opsGet(port, '/readyz')).status === 200, 'ready worker')
}

/** SIGKILLs a worker, as a crash or the OOM killer would, and waits until it is gone. */
export async function sigkill(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL')
  assert.equal((await exited(child)).signal, 'SIGKILL')
}

/** Sends SIGTERM and asserts the worker drains and exits 0; its last output explains a failure. */
export async function assertDrains(child: ChildProcess & { output: string[] }): Promise<void> {
  child.kill('SIGTERM')
  const { code } = await exited(child)
  assert.equal(code, 0, `SIGTERM drains and exits 0:\n${child.output.join('').slice(-3000)}`)
}

/** The one observer of a spawned worker: INSERTs into `entity` (the table `name` by default) go to `url`. */
export interface TrackedWebhook {
  name: string
  url: string
  entity?: string
  source?: string
  retry?: Record<string, unknown>
  timeoutMs?: number
}

/**
 * A webhook observer that sends the delivery id in `x-delivery-id`, so a receiver can tell a
 * redelivery from a new change. Options left unset stay out of the file (JSON drops undefined).
 */
export function trackedWebhook(o: TrackedWebhook) {
  return {
    name: o.name,
    source: o.source,
    entity: o.entity ?? o.name,
    events: ['INSERT'],
    retry: o.retry,
    actions: [
      {
        type: 'webhook',
        url: o.url,
        timeout_ms: o.timeoutMs,
        headers: { 'x-delivery-id': '{{ delivery_id }}' },
      },
    ],
  }
}

/** Env for `spawnCli(['start'], env)`: the database, a directory holding just `observer`, a free ops port (PORT). */
export async function cliWorkerEnv(
  databaseUrl: string,
  observer: { name: string },
  env: Record<string, string> = {},
): Promise<Record<string, string>> {
  return {
    DATABASE_URL: databaseUrl,
    OBSERVERS_DIR: await observersDir({ [`${observer.name}.json`]: observer }),
    // A known port, so a test can ask the worker's /readyz instead of reading its log.
    PORT: String(await listenPort()),
    ...env,
  }
}
