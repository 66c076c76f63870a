import { Command } from 'commander'
import { AppError, coerceError, ErrorCode } from '../errors.ts'
import { register as registerMigrate } from './commands/migrate.ts'
import { register as registerStart } from './commands/start.ts'
import { register as registerValidate } from './commands/validate.ts'
import { register as registerWatch } from './commands/watch.ts'
import { ExitCode } from './context.ts'

const program = new Command()
  .name('observers')
  .description('Turn committed Postgres row changes into reliable side effects.')
  .showHelpAfterError()

for (const register of [registerStart, registerMigrate, registerValidate, registerWatch]) register(program)

program.parseAsync().catch((err: unknown) => {
  const e = coerceError(err)
  console.error(e instanceof AppError ? e.message : `error: ${e.message}`)
  process.exit(
    e instanceof AppError && e.code === ErrorCode.InvalidConfig ? ExitCode.invalid : ExitCode.failure,
  )
})
