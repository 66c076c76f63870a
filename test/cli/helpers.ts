import { spawn } from 'node:child_process'
import path from 'node:path'
import { exited, spawnCli } from '../helpers/process.ts'

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
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), ...args], {
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
