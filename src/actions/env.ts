import type { Config } from '../config/config.ts'
import { ActionError, ErrorCode } from '../errors/errors.ts'

/** Resolves a `*_env` reference at execution time; a missing variable is a permanent OB005. */
export function requireEnv(config: Config, name: string, what: string): string {
  const value = config.env[name]
  if (value === undefined || value === '') {
    throw new ActionError(`${what}: environment variable ${name} is not set`, {
      retryable: false,
      code: ErrorCode.InvalidActionConfig,
    })
  }
  return value
}

/** Names among `names` that are unset in the environment. */
export function missingEnv(config: Config, names: Array<string | undefined>): string[] {
  return names.filter((n): n is string => typeof n === 'string' && !config.env[n])
}
