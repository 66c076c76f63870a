import pino, { type DestinationStream, type Logger } from 'pino'

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
]

/** Replaces `user:password@` in URLs so connection strings can be logged. */
export function maskUrlCredentials(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^/@\s:]+)(:[^/@\s]*)?@/gi, '$1***@')
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'pg-observers' },
      redact: { paths: redactPaths, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        logMethod(args, method) {
          const masked = args.map((a) => (typeof a === 'string' ? maskUrlCredentials(a) : a))
          method.apply(this, masked as Parameters<typeof method>)
        },
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
    destination ?? pino.destination({ sync: false }),
  )
}
