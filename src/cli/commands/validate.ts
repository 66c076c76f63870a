import type { Command } from 'commander'
import { actionTypes } from '../../actions/registry.ts'
import { type Config, loadConfig } from '../../config/config.ts'
import { describeError, ErrorCode } from '../../errors/errors.ts'
import { loadObservers } from '../../observers/load.ts'
import type { Observer } from '../../observers/types.ts'
import { ExitCode } from '../context.ts'

/** Environment variables the actions need that this environment lacks: reported, not fatal. */
function missingVariables(observers: readonly Observer[], config: Config): string[] {
  const lines: string[] = []
  for (const o of observers) {
    o.actions.forEach((action, i) => {
      for (const variable of actionTypes.get(action.type)?.missingTransport(action, config) ?? []) {
        lines.push(
          `${ErrorCode.InvalidActionConfig}: ${o.file} at /actions/${i}: ${action.type} needs ${variable}, which is not set here`,
        )
      }
    })
  }
  return lines
}

export function register(program: Command): void {
  program
    .command('validate')
    .description('check every observer file: schema, conditions, templates, referenced env vars')
    .argument('[dir]', 'observers directory (default: OBSERVERS_DIR or ./observers)')
    .option('--strict-env', 'also fail when a referenced environment variable is not set')
    .action(async (dir: string | undefined, opts: { strictEnv?: boolean }) => {
      const config = loadConfig(dir ? { ...process.env, OBSERVERS_DIR: dir } : process.env)
      const { observers, problems } = await loadObservers(config.observersDir)
      for (const p of problems) console.error(describeError(p))
      const missing = missingVariables(observers, config)
      // With --strict-env an unset variable is a problem like any other, and says so.
      const strict = opts.strictEnv === true
      for (const line of missing) console.error(strict ? line : `warning: ${line}`)
      const count = problems.length + (strict ? missing.length : 0)
      console.log(
        `${observers.length} observer(s) valid, ${count} problem(s), ${missing.length} unset variable(s)`,
      )
      const failed = count > 0
      process.exitCode = failed ? ExitCode.invalid : ExitCode.ok
    })
}
