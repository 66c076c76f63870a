import { type Config, loadConfig } from '../config/config.ts'
import { findDatabaseUrl } from '../db/connect.ts'
import { createPool, type Pool } from '../db/pool.ts'
import { AppError, ConfigError, coerceError, describeError, ErrorCode } from '../errors/errors.ts'

/** Exit codes: 0 ok, 1 failure at run time, 2 invalid input or configuration. */
export const ExitCode = { ok: 0, failure: 1, invalid: 2 } as const

const invalidCodes = new Set<string>([ErrorCode.InvalidConfig, ErrorCode.InvalidRequest])

/** What a failed command prints on stderr: `OB015: message` for our errors. */
export function errorOutput(err: unknown): string {
  const e = coerceError(err)
  return e instanceof AppError ? describeError(e) : `error: ${e.message}`
}

/** The exit code of a command that threw `err`: 2 for input or configuration the user can fix. */
export function exitCodeOf(err: unknown): number {
  const invalid = err instanceof ConfigError || (err instanceof AppError && invalidCodes.has(err.code))
  return invalid ? ExitCode.invalid : ExitCode.failure
}

/** Runs `fn` with a pool on DATABASE_URL, or on the embedded database a running worker announced. */
export async function withPool<T>(fn: (pool: Pool, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig()
  const url = await findDatabaseUrl(config)
  if (!url) {
    throw new AppError(
      ErrorCode.InvalidConfig,
      'DATABASE_URL is not set and no embedded database is running (start one with `npm start`)',
    )
  }
  const pool = createPool(url, { max: 2, name: 'pg-observers-cli' })
  try {
    return await fn(pool, config)
  } finally {
    await pool.end()
  }
}
