import { createRequire } from 'node:module'
import pino, { type DestinationStream, type Logger } from 'pino'
import type pinoPretty from 'pino-pretty'

// Loaded only for a terminal: most commands and every production worker log JSON.
const loadPretty = () => createRequire(import.meta.url)('pino-pretty') as typeof pinoPretty

export type { Logger }

/**
 * Paths whose values are secrets wherever they appear in a log record. Values are also
 * scrubbed of URL credentials by the serializers below.
 */
export const redactPaths = [
  'password',
  'token',
  'secret',
  'authorization',
  '*.password',
  '*.token',
  '*.secret',
  '*.authorization',
  '*.Authorization',
  'headers.authorization',
  'headers.Authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
  'req.headers.authorization',
  'cookie',
  'apiToken',
  'api_key',
  '*.cookie',
  '*.apiToken',
  '*.api_key',
  '*.headers.cookie',
  '*.headers["x-api-key"]',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
]

// Secret values (env values an observer references, the API token, connection-string passwords)
// scrubbed from every serialized line, wherever a message or field happens to carry them.
const secretValues = new Set<string>()
const minSecretLength = 6

/** Registers values that must never be written to a log line; shorter values are ignored. */
export function registerSecretValues(values: Iterable<string | undefined>): void {
  for (const v of values) if (v && v.length >= minSecretLength) secretValues.add(v)
}

/** Replaces every registered secret value in `line` (raw or JSON-escaped) with `[redacted]`. */
export function scrubSecrets(line: string): string {
  let out = line
  for (const secret of secretValues) {
    if (out.includes(secret)) out = out.replaceAll(secret, '[redacted]')
    const escaped = JSON.stringify(secret).slice(1, -1)
    if (escaped !== secret && out.includes(escaped)) out = out.replaceAll(escaped, '[redacted]')
  }
  return out
}

/** The password part of a connection URL, if any. */
export function urlPassword(url: string | undefined): string | undefined {
  if (!url || !URL.canParse(url)) return undefined
  const password = new URL(url).password
  return password ? decodeURIComponent(password) : undefined
}

function maskFields(value: unknown): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value) || value instanceof Error) return value
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, typeof v === 'string' ? maskUrlCredentials(v) : v]),
  )
}

/** Replaces `user:password@` in URLs so connection strings can be logged. */
export function maskUrlCredentials(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^/@\s:]+)(:[^/@\s]*)?@/gi, '$1***@')
}

export interface LoggerOptions {
  /** Human-readable lines through pino-pretty instead of JSON (ignored with a destination). */
  pretty?: boolean
}

export function createLogger(
  level: string,
  destination?: DestinationStream,
  options: LoggerOptions = {},
): Logger {
  const stream =
    destination ??
    (options.pretty
      ? loadPretty()({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' })
      : pino.destination({ sync: false }))
  return pino(
    {
      level,
      base: { service: 'pg-observers' },
      redact: { paths: redactPaths, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        logMethod(args, method) {
          const masked = args.map((a) => (typeof a === 'string' ? maskUrlCredentials(a) : maskFields(a)))
          method.apply(this, masked as Parameters<typeof method>)
        },
        streamWrite: scrubSecrets,
      },
      serializers: {
        err: (err: Error & { code?: string }) => ({
          type: err.name,
          message: maskUrlCredentials(err.message),
          code: err.code,
          stack: err.stack ? maskUrlCredentials(err.stack) : undefined,
        }),
      },
    },
    stream,
  )
}
