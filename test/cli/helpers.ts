import { spawn } from 'node:child_process'
import path from 'node:path'
import { format } from 'node:util'
import { Command, CommanderError } from 'commander'
import { register as registerBackfill } from '../../src/cli/commands/backfill.ts'
import { register as registerDlq } from '../../src/cli/commands/dlq.ts'
import { register as registerFire } from '../../src/cli/commands/fire.ts'
import { register as registerReplay } from '../../src/cli/commands/replay.ts'
import { register as registerStatus } from '../../src/cli/commands/status.ts'
import { register as registerWatch } from '../../src/cli/commands/watch.ts'
import { ExitCode, errorOutput, exitCodeOf as exitCodeOfError } from '../../src/cli/context.ts'
import { exited, spawnCli } from '../helpers/process.ts'

const commands = [registerBackfill, registerDlq, registerFire, registerReplay, registerStatus, registerWatch]

export interface CliResult {
  code: number | null
  stdout: string
  /** stdout and stderr interleaved */
  output: string
}

/** Runs `observers <args>` to completion. */
export async function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  const child = spawnCli(args, { LOG_LEVEL: 'warn', ...env })
  const stdout: string[] = []
  child.stdout?.on('data', (d: Buffer) => stdout.push(d.toString('utf8')))
  const { code } = await exited(child)
  return { code, stdout: stdout.join(''), output: child.output.join('') }
}

/** Runs `observers <args>` with `input` on stdin (spawnCli leaves stdin closed). */
export async function runCliWithStdin(
  args: string[],
  env: Record<string, string>,
  input: string,
): Promise<CliResult> {
  const root = path.resolve(import.meta.dirname, '../..')
  const child = spawn(process.execPath, [path.join(root, 'src/cli/main.ts'), ...args], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const stdout: string[] = []
  const output: string[] = []
  child.stdout.on('data', (d: Buffer) => {
    stdout.push(d.toString('utf8'))
    output.push(d.toString('utf8'))
  })
  child.stderr.on('data', (d: Buffer) => output.push(d.toString('utf8')))
  child.stdin.end(input)
  const { code } = await exited(child)
  return { code, stdout: stdout.join(''), output: output.join('') }
}

/**
 * Runs `observers <args>` inside this process with the CLI's own command modules, for tests about
 * what a command does rather than the process around it: a spawn costs a second or more of CPU.
 * `env` is set on process.env for the run; exit codes follow src/cli/main.ts (usage and invalid
 * input 2, any other error 1).
 */
export async function runCliInProcess(args: string[], env: Record<string, string>): Promise<CliResult> {
  const stdout: string[] = []
  const output: string[] = []
  const out = (...parts: unknown[]) => {
    const line = `${format(...parts)}\n`
    stdout.push(line)
    output.push(line)
  }
  const err = (...parts: unknown[]) => output.push(`${format(...parts)}\n`)
  const saved = { log: console.log, error: console.error, exitCode: process.exitCode }
  const savedEnv = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]))
  Object.assign(process.env, env)
  console.log = out
  console.error = err
  process.exitCode = undefined
  let code: number
  try {
    const program = new Command()
      .name('observers')
      .exitOverride((e) => {
        throw e
      })
      .configureOutput({ writeOut: (s) => out(s.trimEnd()), writeErr: (s) => err(s.trimEnd()) })
    for (const register of commands) register(program)
    await program.parseAsync(args, { from: 'user' })
    code = Number(process.exitCode ?? ExitCode.ok)
  } catch (thrown) {
    code = exitCodeOf(thrown)
    if (!(thrown instanceof CommanderError)) err(errorOutput(thrown))
  } finally {
    console.log = saved.log
    console.error = saved.error
    process.exitCode = saved.exitCode
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
  return { code, stdout: stdout.join(''), output: output.join('') }
}

function exitCodeOf(thrown: unknown): number {
  if (thrown instanceof CommanderError) return thrown.exitCode === 0 ? ExitCode.ok : ExitCode.invalid
  return exitCodeOfError(thrown)
}
