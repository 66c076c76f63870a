import path from 'node:path'
import { ConfigError, ErrorCode } from './errors.ts'

/** Typed, frozen configuration. Nothing outside this file reads process.env. */
export interface Config {
  /** Postgres URL; undefined starts an embedded Postgres under `.data/`. */
  readonly databaseUrl: string | undefined
  /** @defaultValue `./observers` */
  readonly observersDir: string
  /** @defaultValue 8080 */
  readonly port: number
  /** @defaultValue `127.0.0.1` */
  readonly host: string
  readonly apiToken: string | undefined
  /** @defaultValue `info` */
  readonly logLevel: string
  /** Watch the tables observers name at startup. @defaultValue true */
  readonly autoWatch: boolean
  /** Setting read for actor_id when `observers.actor` is unset. @defaultValue `request.jwt.claim.sub` */
  readonly actorSetting: string
  /** Change-log rows claimed per dispatch transaction. @defaultValue 500 */
  readonly dispatchBatchSize: number
  /** Backstop poll when no NOTIFY arrives. @defaultValue 1000 */
  readonly dispatchPollMs: number
  /** Jobs in flight per action type in this process. @defaultValue 32 */
  readonly concurrency: number
  /** Per-type overrides of `concurrency`, from OBSERVERS_CONCURRENCY_<TYPE>. */
  readonly concurrencyByType: Readonly<Record<string, number>>
  /** SIGTERM grace period for in-flight actions. @defaultValue 25000 */
  readonly shutdownGraceMs: number
  /** How long a dead-lettered delivery is kept. @defaultValue 30 */
  readonly dlqRetentionDays: number
  /** Dispatched change-log rows older than this are deleted. @defaultValue 7 */
  readonly retentionDays: number
  /** Refuse HTTP actions to loopback/private/link-local addresses. @defaultValue false */
  readonly blockPrivateNetworks: boolean
  /** Where the embedded Postgres keeps its data. @defaultValue `.data/postgres` */
  readonly embeddedDataDir: string
  /** The process environment, for `*_env` references resolved at execution time. */
  readonly env: Readonly<Record<string, string | undefined>>
}

const defaults = {
  observersDir: './observers',
  port: 8080,
  host: '127.0.0.1',
  logLevel: 'info',
  actorSetting: 'request.jwt.claim.sub',
  dispatchBatchSize: 500,
  dispatchPollMs: 1000,
  concurrency: 32,
  shutdownGraceMs: 25_000,
  dlqRetentionDays: 30,
  retentionDays: 7,
  embeddedDataDir: '.data/postgres',
} as const

export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const concurrencyByType: Record<string, number> = {}
  for (const [key, value] of Object.entries(env)) {
    const m = /^OBSERVERS_CONCURRENCY_([A-Z]+)$/.exec(key)
    if (m?.[1] && value) concurrencyByType[m[1].toLowerCase()] = int(key, value, 1)
  }
  return Object.freeze({
    databaseUrl: nonEmpty(env.DATABASE_URL),
    observersDir: path.resolve(env.OBSERVERS_DIR || defaults.observersDir),
    port: env.PORT ? int('PORT', env.PORT, 0) : defaults.port,
    host: env.HOST || defaults.host,
    apiToken: nonEmpty(env.OBSERVERS_API_TOKEN),
    logLevel: env.LOG_LEVEL || defaults.logLevel,
    autoWatch: bool('OBSERVERS_AUTO_WATCH', env.OBSERVERS_AUTO_WATCH, true),
    actorSetting: env.OBSERVERS_ACTOR_SETTING ?? defaults.actorSetting,
    dispatchBatchSize: optInt('OBSERVERS_DISPATCH_BATCH_SIZE', env, defaults.dispatchBatchSize, 1),
    dispatchPollMs: optInt('OBSERVERS_DISPATCH_POLL_MS', env, defaults.dispatchPollMs, 10),
    concurrency: optInt('OBSERVERS_CONCURRENCY', env, defaults.concurrency, 1),
    concurrencyByType: Object.freeze(concurrencyByType),
    shutdownGraceMs: optInt('OBSERVERS_SHUTDOWN_GRACE_MS', env, defaults.shutdownGraceMs, 0),
    dlqRetentionDays: optInt('OBSERVERS_DLQ_RETENTION_DAYS', env, defaults.dlqRetentionDays, 1),
    retentionDays: optInt('OBSERVERS_RETENTION_DAYS', env, defaults.retentionDays, 1),
    blockPrivateNetworks: bool(
      'OBSERVERS_BLOCK_PRIVATE_NETWORKS',
      env.OBSERVERS_BLOCK_PRIVATE_NETWORKS,
      false,
    ),
    embeddedDataDir: path.resolve(env.OBSERVERS_EMBEDDED_DATA_DIR || defaults.embeddedDataDir),
    env: Object.freeze({ ...env }),
  })
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v
}

function optInt(
  name: string,
  env: Readonly<Record<string, string | undefined>>,
  fallback: number,
  min: number,
) {
  const v = env[name]
  return v === undefined || v === '' ? fallback : int(name, v, min)
}

function int(name: string, value: string, min: number): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < min) {
    throw new ConfigError(ErrorCode.InvalidConfig, `${name} must be an integer >= ${min}, got "${value}"`)
  }
  return n
}

function bool(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback
  if (/^(1|true|yes|on)$/i.test(value)) return true
  if (/^(0|false|no|off)$/i.test(value)) return false
  throw new ConfigError(ErrorCode.InvalidConfig, `${name} must be true or false, got "${value}"`)
}
