import { type ChildProcess, spawn } from 'node:child_process'
import path from 'node:path'

const root = path.resolve(import.meta.dirname, '../..')

/** Runs `observers <args>` as a separate process (tsx on this Node), for kill and signal tests. */
export function spawnCli(args: string[], env: Record<string, string>): ChildProcess & { output: string[] } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), ...args], {
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
  timeoutMs = 30_000,
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
