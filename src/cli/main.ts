import { readFileSync } from 'node:fs'
import { Command } from 'commander'
import { ExitCode, errorOutput, exitCodeOf } from './context.ts'

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

type Load = () => Promise<{ register: (program: Command) => void }>

const watchCommands: Load = () => import('./commands/watch.ts')
const pauseCommands: Load = () => import('./commands/pause.ts')

/**
 * Each command's module, loaded only when that command runs: a command pays for its own
 * dependencies (a database driver, pg-boss, the worker), never for the others'.
 */
const commands: Record<string, Load> = {
  start: () => import('./commands/start.ts'),
  migrate: () => import('./commands/migrate.ts'),
  validate: () => import('./commands/validate.ts'),
  watch: watchCommands,
  unwatch: watchCommands,
  dlq: () => import('./commands/dlq.ts'),
  replay: () => import('./commands/replay.ts'),
  fire: () => import('./commands/fire.ts'),
  backfill: () => import('./commands/backfill.ts'),
  status: () => import('./commands/status.ts'),
  test: () => import('./commands/test.ts'),
  pause: pauseCommands,
  resume: pauseCommands,
  breaker: async () => ({ register: (await import('./commands/pause.ts')).registerBreaker }),
}

/** The command named on the command line; every command when none is (help, a typo). */
function commandsToLoad(argv: readonly string[]): Load[] {
  const named = argv.find((arg) => !arg.startsWith('-'))
  const one = named !== undefined && Object.hasOwn(commands, named) ? commands[named] : undefined
  return one ? [one] : [...new Set(Object.values(commands))]
}

const modules = await Promise.all(commandsToLoad(process.argv.slice(2)).map((load) => load()))
for (const { register } of modules) register(program)

program.parseAsync().catch((err: unknown) => {
  console.error(errorOutput(err))
  process.exit(exitCodeOf(err))
})
