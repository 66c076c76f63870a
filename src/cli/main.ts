import { readFileSync } from 'node:fs'
import { Command } from 'commander'
import { AppError, ConfigError, coerceError, ErrorCode } from '../errors.ts'
import { register as registerDlq } from './commands/dlq.ts'
import { register as registerMigrate } from './commands/migrate.ts'
import { registerBreaker, register as registerPause } from './commands/pause.ts'
import { register as registerReplay } from './commands/replay.ts'
import { register as registerStart } from './commands/start.ts'
import { register as registerStatus } from './commands/status.ts'
import { register as registerTest } from './commands/test.ts'
import { register as registerValidate } from './commands/validate.ts'
import { register as registerWatch } from './commands/watch.ts'
import { ExitCode } from './context.ts'

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string
}

const program = new Command()
  .name('observers')
  .description('Turn committed Postgres row changes into reliable side effects.')
  .version(version, '-V, --version')
  .showHelpAfterError()
  // Usage errors (unknown option, missing argument) are invalid input: exit 2, not commander's 1.
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? ExitCode.ok : ExitCode.invalid)
  })

for (const register of [
  registerStart,
  registerMigrate,
  registerValidate,
  registerWatch,
  registerDlq,
  registerReplay,
  registerStatus,
  registerTest,
  registerPause,
  registerBreaker,
]) {
  register(program)
}

program.parseAsync().catch((err: unknown) => {
  const e = coerceError(err)
  console.error(e instanceof AppError ? e.message : `error: ${e.message}`)
  const invalid = e instanceof ConfigError || (e instanceof AppError && e.code === ErrorCode.InvalidConfig)
  process.exit(invalid ? ExitCode.invalid : ExitCode.failure)
})
