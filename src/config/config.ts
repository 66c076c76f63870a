import path from 'node:path'
import { maxPartitions } from '../db/locks.ts'
import { ConfigError, ErrorCode } from '../errors/errors.ts'

/** A change source besides our own change log (docs/sources.md). */
export interface SourceConfig {
  /** What observers put in `"source"`. */
  readonly name: string
  readonly kind: 'fraiseql' | 'mysql'
  /**
   * fraiseql: schema.table of its change log, in DATABASE_URL's database (`core.tb_entity_change_log`);
   * mysql: the change-log table the triggers write (`observers_change_log`).
   */
  readonly table: string
  /** mysql: connection URL. */
  readonly url: string | undefined
  /** @defaultValue 1000 */
  readonly pollMs: number
  /** Longest a writing transaction may stay open after its change. @defaultValue 300000 (fraiseql), 120000 (mysql) */
  readonly commitWindowMs: number
}

/** Typed, frozen configuration. Nothing outside this file reads process.env. */
export interface Config {
  /** Postgres URL; undefined starts an embedded Postgres under `.data/`. */
  readonly databaseUrl: string | undefined
  /**
   * A direct (session) connection to the same database, for LISTEN and session advisory locks
   * when DATABASE_URL goes through a transaction-mode pooler such as PgBouncer.
   */
  readonly databaseDirectUrl: string | undefined
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
  /** Row-image bytes claimed per dispatch transaction; one change is always taken. @defaultValue 16777216 */
  readonly dispatchBatchBytes: number
  /** A change whose row images are larger is dead-lettered unread (OB009). @defaultValue 16777216 */
  readonly maxChangeBytes: number
  /** Backstop poll when no NOTIFY arrives. @defaultValue 1000 */
  readonly dispatchPollMs: number
  /**
   * Partitions of the change log, shared out among the dispatching workers (docs/operations.md).
   * @defaultValue 8
   */
  readonly dispatchPartitions: number
  /**
   * Backstop poll of the queues, for jobs no wake-up announced (a crashed worker's, once expired).
   * Undefined: 5000 ms while the runners LISTEN, 1000 ms behind a pooler where they cannot.
   */
  readonly queuePollMs: number | undefined
  /** Jobs in flight per action type in this process. @defaultValue 32 */
  readonly concurrency: number
  /** Per-type overrides of `concurrency`, from OBSERVERS_CONCURRENCY_<TYPE>. */
  readonly concurrencyByType: Readonly<Record<string, number>>
  /**
   * Send our hot statements (retry scheduling, dispatch claims, ledger updates) as named prepared
   * statements. Off for poolers that cannot keep them across transactions. @defaultValue true
   */
  readonly preparedStatements: boolean
  /** Connections of the queue's pool; the worker's own pool gets half as many. @defaultValue 10 */
  readonly dbPoolSize: number
  /** SIGTERM grace period for in-flight actions. @defaultValue 25000 */
  readonly shutdownGraceMs: number
  /** Consecutive failed attempts that open a destination's circuit breaker; 0 turns breakers off. @defaultValue 5 */
  readonly breakerFailures: number
  /** While a breaker is open, one attempt (the probe) goes through this often. @defaultValue 30000 */
  readonly breakerProbeMs: number
  /** How long a dead-lettered delivery is kept. @defaultValue 30 */
  readonly dlqRetentionDays: number
  /** Dispatched change-log rows older than this are deleted. @defaultValue 7 */
  readonly retentionDays: number
  /** Refuse HTTP actions to loopback/private/link-local addresses. @defaultValue false */
  readonly blockPrivateNetworks: boolean
  /** Undispatched change-log rows above which a backlog warning is logged. @defaultValue 1000 */
  readonly backlogWarn: number
  /** Age of the oldest undispatched change above which a lag warning is logged. @defaultValue 60 */
  readonly lagWarnSeconds: number
  /** /readyz fails when the oldest undispatched change is older than this. @defaultValue 300 */
  readonly readyMaxLagSeconds: number
  /** Reload observers when a file in observersDir changes. @defaultValue true */
  readonly watchDir: boolean
  /** How often retention and the backlog check run. @defaultValue 60000 */
  readonly housekeepingIntervalMs: number
  /** Comment line sent on idle /api/stream connections so proxies keep them open. @defaultValue 15000 */
  readonly sseHeartbeatMs: number
  /** Open connections the ops server accepts; further ones are closed at once. @defaultValue 256 */
  readonly httpMaxConnections: number
  /** Time a client has to send its request headers. @defaultValue 10000 */
  readonly httpHeadersTimeoutMs: number
  /** Time a client has to send its whole request (a stream's response is not part of it). @defaultValue 30000 */
  readonly httpRequestTimeoutMs: number
  /** Open /api/stream connections; further ones are answered 503. @defaultValue 100 */
  readonly streamMaxClients: number
  /** Human-readable logs (pino-pretty). @defaultValue true on a TTY unless NODE_ENV=production */
  readonly logPretty: boolean
  /** Sources besides the change log: OBSERVERS_SOURCES, FRAISEQL_CHANGE_LOG_TABLE, MYSQL_SOURCE_URL. */
  readonly sources: readonly SourceConfig[]
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
  dispatchBatchBytes: 16 * 1024 * 1024,
  maxChangeBytes: 16 * 1024 * 1024,
  dispatchPollMs: 1000,
  // Up to 8 workers share dispatch evenly (1, 2, 4 or 8); one worker leads them all in one claim.
  dispatchPartitions: 8,
  concurrency: 32,
  dbPoolSize: 10,
  shutdownGraceMs: 25_000,
  breakerFailures: 0,
  breakerProbeMs: 30_000,
  dlqRetentionDays: 30,
  retentionDays: 7,
  backlogWarn: 1000,
  lagWarnSeconds: 60,
  readyMaxLagSeconds: 300,
  watchDir: true,
  housekeepingIntervalMs: 60_000,
  sseHeartbeatMs: 15_000,
  httpMaxConnections: 256,
  httpHeadersTimeoutMs: 10_000,
  httpRequestTimeoutMs: 30_000,
  streamMaxClients: 100,
  embeddedDataDir: '.data/postgres',
  sourcePollMs: 1000,
  fraiseqlTable: 'core.tb_entity_change_log',
  fraiseqlCommitWindowMs: 300_000,
  mysqlLogTable: 'observers_change_log',
  mysqlCommitWindowMs: 120_000,
} as const

export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const concurrencyByType: Record<string, number> = {}
  for (const [key, value] of Object.entries(env)) {
    const m = /^OBSERVERS_CONCURRENCY_([A-Z]+)$/.exec(key)
    if (m?.[1] && value) concurrencyByType[m[1].toLowerCase()] = int(key, value, 1)
  }
  return Object.freeze({
    databaseUrl: nonEmpty(env.DATABASE_URL),
    databaseDirectUrl: nonEmpty(env.DATABASE_DIRECT_URL),
    observersDir: path.resolve(env.OBSERVERS_DIR || defaults.observersDir),
    port: env.PORT ? int('PORT', env.PORT, 0) : defaults.port,
    host: env.HOST || defaults.host,
    apiToken: nonEmpty(env.OBSERVERS_API_TOKEN),
    logLevel: env.LOG_LEVEL || defaults.logLevel,
    autoWatch: bool('OBSERVERS_AUTO_WATCH', env.OBSERVERS_AUTO_WATCH, true),
    actorSetting: env.OBSERVERS_ACTOR_SETTING ?? defaults.actorSetting,
    dispatchBatchSize: optInt('OBSERVERS_DISPATCH_BATCH_SIZE', env, defaults.dispatchBatchSize, 1),
    dispatchBatchBytes: optInt('OBSERVERS_DISPATCH_BATCH_BYTES', env, defaults.dispatchBatchBytes, 1),
    maxChangeBytes: optInt('OBSERVERS_MAX_CHANGE_BYTES', env, defaults.maxChangeBytes, 1),
    dispatchPollMs: optInt('OBSERVERS_DISPATCH_POLL_MS', env, defaults.dispatchPollMs, 10),
    dispatchPartitions: atMost(
      'OBSERVERS_DISPATCH_PARTITIONS',
      optInt('OBSERVERS_DISPATCH_PARTITIONS', env, defaults.dispatchPartitions, 1),
      maxPartitions,
    ),
    queuePollMs: env.OBSERVERS_QUEUE_POLL_MS
      ? int('OBSERVERS_QUEUE_POLL_MS', env.OBSERVERS_QUEUE_POLL_MS, 10)
      : undefined,
    concurrency: optInt('OBSERVERS_CONCURRENCY', env, defaults.concurrency, 1),
    concurrencyByType: Object.freeze(concurrencyByType),
    preparedStatements: bool('OBSERVERS_PREPARED_STATEMENTS', env.OBSERVERS_PREPARED_STATEMENTS, true),
    dbPoolSize: optInt('OBSERVERS_DB_POOL_SIZE', env, defaults.dbPoolSize, 2),
    shutdownGraceMs: optInt('OBSERVERS_SHUTDOWN_GRACE_MS', env, defaults.shutdownGraceMs, 0),
    breakerFailures: optInt('OBSERVERS_BREAKER_FAILURES', env, defaults.breakerFailures, 0),
    breakerProbeMs: optInt('OBSERVERS_BREAKER_PROBE_MS', env, defaults.breakerProbeMs, 10),
    dlqRetentionDays: optInt('OBSERVERS_DLQ_RETENTION_DAYS', env, defaults.dlqRetentionDays, 1),
    retentionDays: optInt('OBSERVERS_RETENTION_DAYS', env, defaults.retentionDays, 1),
    blockPrivateNetworks: bool(
      'OBSERVERS_BLOCK_PRIVATE_NETWORKS',
      env.OBSERVERS_BLOCK_PRIVATE_NETWORKS,
      false,
    ),
    backlogWarn: optInt('OBSERVERS_BACKLOG_WARN', env, defaults.backlogWarn, 1),
    lagWarnSeconds: optInt('OBSERVERS_LAG_WARN_SECONDS', env, defaults.lagWarnSeconds, 1),
    readyMaxLagSeconds: optInt('OBSERVERS_READY_MAX_LAG_SECONDS', env, defaults.readyMaxLagSeconds, 1),
    watchDir: bool('OBSERVERS_WATCH_DIR', env.OBSERVERS_WATCH_DIR, defaults.watchDir),
    housekeepingIntervalMs: optInt(
      'OBSERVERS_HOUSEKEEPING_INTERVAL_MS',
      env,
      defaults.housekeepingIntervalMs,
      100,
    ),
    sseHeartbeatMs: optInt('OBSERVERS_SSE_HEARTBEAT_MS', env, defaults.sseHeartbeatMs, 100),
    ...opsServerLimits(env),
    logPretty: bool(
      'LOG_PRETTY',
      env.LOG_PRETTY,
      env.NODE_ENV !== 'production' && process.stdout.isTTY === true,
    ),
    embeddedDataDir: path.resolve(env.OBSERVERS_EMBEDDED_DATA_DIR || defaults.embeddedDataDir),
    sources: Object.freeze(parseSources(env)),
    env: Object.freeze({ ...env }),
  })
}

/** Connection limits of the ops server, checked against each other so a stream cannot take every slot. */
function opsServerLimits(env: Readonly<Record<string, string | undefined>>) {
  const limits = {
    httpMaxConnections: optInt('OBSERVERS_HTTP_MAX_CONNECTIONS', env, defaults.httpMaxConnections, 2),
    httpHeadersTimeoutMs: optInt(
      'OBSERVERS_HTTP_HEADERS_TIMEOUT_MS',
      env,
      defaults.httpHeadersTimeoutMs,
      100,
    ),
    httpRequestTimeoutMs: optInt(
      'OBSERVERS_HTTP_REQUEST_TIMEOUT_MS',
      env,
      defaults.httpRequestTimeoutMs,
      100,
    ),
    streamMaxClients: optInt('OBSERVERS_STREAM_MAX_CLIENTS', env, defaults.streamMaxClients, 0),
  }
  if (limits.httpRequestTimeoutMs < limits.httpHeadersTimeoutMs) {
    throw new ConfigError(
      ErrorCode.InvalidConfig,
      'OBSERVERS_HTTP_REQUEST_TIMEOUT_MS must be at least OBSERVERS_HTTP_HEADERS_TIMEOUT_MS',
    )
  }
  if (limits.streamMaxClients >= limits.httpMaxConnections) {
    throw new ConfigError(
      ErrorCode.InvalidConfig,
      'OBSERVERS_STREAM_MAX_CLIENTS must be below OBSERVERS_HTTP_MAX_CONNECTIONS, so /healthz and the API keep a connection',
    )
  }
  return limits
}

/** Where a source's settings live: FRAISEQL_CHANGE_LOG_*, MYSQL_SOURCE_*, else OBSERVERS_SOURCE_<NAME>_*. */
export function sourceEnvPrefix(name: string): string {
  if (name === 'fraiseql') return 'FRAISEQL_CHANGE_LOG_'
  if (name === 'mysql') return 'MYSQL_SOURCE_'
  return `OBSERVERS_SOURCE_${name.toUpperCase()}_`
}

/** OBSERVERS_SOURCES=name[:kind],…; FRAISEQL_CHANGE_LOG_TABLE and MYSQL_SOURCE_URL add `fraiseql` and `mysql`. */
function parseSources(env: Readonly<Record<string, string | undefined>>): SourceConfig[] {
  const entries = (env.OBSERVERS_SOURCES ?? '').split(',').map((s) => s.trim())
  if (env.FRAISEQL_CHANGE_LOG_TABLE) entries.push('fraiseql')
  if (env.MYSQL_SOURCE_URL) entries.push('mysql')
  const byName = new Map<string, SourceConfig>()
  for (const entry of entries.filter(Boolean)) {
    const [name = '', kind = name] = entry.split(':')
    if (!/^[a-z][a-z0-9_]{0,62}$/.test(name) || name === 'changelog') {
      throw new ConfigError(
        ErrorCode.InvalidConfig,
        `OBSERVERS_SOURCES: "${name}" is not a usable source name`,
      )
    }
    if (kind !== 'fraiseql' && kind !== 'mysql') {
      throw new ConfigError(
        ErrorCode.InvalidConfig,
        `OBSERVERS_SOURCES: source "${name}" has unknown kind "${kind}" (expected fraiseql or mysql)`,
      )
    }
    if (byName.get(name)?.kind === kind) continue
    if (byName.has(name))
      throw new ConfigError(ErrorCode.InvalidConfig, `source "${name}" is configured twice`)
    byName.set(name, sourceConfig(name, kind, env))
  }
  return [...byName.values()]
}

function sourceConfig(
  name: string,
  kind: SourceConfig['kind'],
  env: Readonly<Record<string, string | undefined>>,
): SourceConfig {
  const p = sourceEnvPrefix(name)
  const url = nonEmpty(env[`${p}URL`])
  if (kind === 'mysql' && !url) {
    throw new ConfigError(
      ErrorCode.InvalidConfig,
      `source "${name}" needs ${p}URL (mysql://user:password@host:3306/db)`,
    )
  }
  const fraiseql = kind === 'fraiseql'
  return Object.freeze({
    name,
    kind,
    url,
    table: env[`${p}TABLE`] || (fraiseql ? defaults.fraiseqlTable : defaults.mysqlLogTable),
    pollMs: optInt(`${p}POLL_MS`, env, defaults.sourcePollMs, 10),
    commitWindowMs: optInt(
      `${p}COMMIT_WINDOW_MS`,
      env,
      fraiseql ? defaults.fraiseqlCommitWindowMs : defaults.mysqlCommitWindowMs,
      1000,
    ),
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

function atMost(name: string, n: number, max: number): number {
  if (n > max) throw new ConfigError(ErrorCode.InvalidConfig, `${name} must be at most ${max}, got ${n}`)
  return n
}

function bool(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback
  if (/^(1|true|yes|on)$/i.test(value)) return true
  if (/^(0|false|no|off)$/i.test(value)) return false
  throw new ConfigError(ErrorCode.InvalidConfig, `${name} must be true or false, got "${value}"`)
}
