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
/** The paths above as a tree of key segments; `*` matches any key. A leaf is a value to censor. */
interface PathNode {
  censor: boolean
  next: Map<string, PathNode>
}

function pathTree(paths: readonly string[]): PathNode {
  const root: PathNode = { censor: false, next: new Map() }
  for (const p of paths) {
    let node = root
    for (const m of p.matchAll(/([^.[\]"]+)|\["([^"]+)"\]/g)) {
      const key = m[1] ?? m[2] ?? ''
      const child = node.next.get(key) ?? { censor: false, next: new Map() }
      node.next.set(key, child)
      node = child
    }
    node.censor = true
  }
  return root
}

const censor = '[redacted]'
const redactTree = pathTree(redactPaths)

const isPlainRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Error)

/**
 * The record with every value at a redact path replaced, copied only where something is: what
 * pino's `redact` option did, without its cost on every line (most lines carry no such key).
 */
function redactRecord(record: Record<string, unknown>, node: PathNode = redactTree): Record<string, unknown> {
  let out: Record<string, unknown> | undefined
  for (const key in record) {
    const value = record[key]
    if (value === undefined) continue
    const exact = node.next.get(key)
    const any = node.next.get('*')
    let replaced: unknown = value
    if (exact?.censor || any?.censor) replaced = censor
    else if (isPlainRecord(value)) {
      if (exact) replaced = redactRecord(value, exact)
      if (any && isPlainRecord(replaced)) replaced = redactRecord(replaced, any)
    }
    if (replaced === value) continue
    out ??= { ...record }
    out[key] = replaced
  }
  return out ?? record
}

// Each with its JSON-escaped form when that differs, worked out once rather than per line.
const secretValues = new Map<string, string | undefined>()
const minSecretLength = 6

/** Registers values that must never be written to a log line; shorter values are ignored. */
export function registerSecretValues(values: Iterable<string | undefined>): void {
  for (const v of values) {
    if (!v || v.length < minSecretLength || secretValues.has(v)) continue
    const escaped = JSON.stringify(v).slice(1, -1)
    secretValues.set(v, escaped === v ? undefined : escaped)
  }
}

/** Replaces every registered secret value in `line` (raw or JSON-escaped) with `[redacted]`. */
export function scrubSecrets(line: string): string {
  let out = line
  for (const [secret, escaped] of secretValues) {
    if (out.includes(secret)) out = out.replaceAll(secret, '[redacted]')
    if (escaped !== undefined && out.includes(escaped)) out = out.replaceAll(escaped, '[redacted]')
  }
  return out
}

/** The password part of a connection URL, if any. */
export function urlPassword(url: string | undefined): string | undefined {
  if (!url || !URL.canParse(url)) return undefined
  const password = new URL(url).password
  return password ? decodeURIComponent(password) : undefined
}

/** The record itself when none of its strings holds credentials: a line per delivery copies nothing. */
function maskFields(value: unknown): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value) || value instanceof Error) return value
  const record = value as Record<string, unknown>
  let masked: Record<string, unknown> | undefined
  for (const k in record) {
    const v = record[k]
    if (typeof v !== 'string') continue
    const m = maskUrlCredentials(v)
    if (m === v) continue
    masked ??= { ...record }
    masked[k] = m
  }
  return masked ?? value
}

/** Replaces `user:password@` in URLs so connection strings can be logged. */
export function maskUrlCredentials(text: string): string {
  if (!text.includes('://')) return text
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^/@\s:]+)(:[^/@\s]*)?@/gi, '$1***@')
}

// Lines are written in batches of at least this many bytes, and at the latest this long after
// the first of them: one write per line was a system call per delivery. pino flushes the rest
// when the process exits.
const logBatchBytes = 4096
const logFlushMs = 100

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
      : pino.destination({ sync: false, minLength: logBatchBytes, periodicFlush: logFlushMs }))
  return pino(
    {
      level,
      base: { service: 'pg-observers' },
      formatters: { level: (label) => ({ level: label }), log: (record) => redactRecord(record) },
      hooks: {
        logMethod(args, method) {
          for (let i = 0; i < args.length; i++) {
            const a = args[i]
            args[i] = typeof a === 'string' ? maskUrlCredentials(a) : maskFields(a)
          }
          method.apply(this, args)
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
