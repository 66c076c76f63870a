import type { Command } from 'commander'
import { loadConfig } from '../../config.ts'
import { loadObservers } from '../../observers/load.ts'
import { ExitCode } from '../context.ts'

export function register(program: Command): void {
  program
    .command('validate')
    .description('check every observer file: schema, conditions, templates, referenced env vars')
    .argument('[dir]', 'observers directory (default: OBSERVERS_DIR or ./observers)')
    .action(async (dir?: string) => {
      const config = loadConfig(dir ? { ...process.env, OBSERVERS_DIR: dir } : process.env)
      const { observers, problems } = await loadObservers(config.observersDir)
      for (const p of problems) console.error(p.message)
      console.log(`${observers.length} observer(s) valid, ${problems.length} problem(s)`)
      process.exitCode = problems.length > 0 ? ExitCode.invalid : ExitCode.ok
    })
}
