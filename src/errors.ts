/**
 * Stable error codes. Every message and log line that reports an error carries one,
 * so operators can search docs/errors.md by code.
 */
export const ErrorCode = {
  InvalidConfig: 'OB001',
  NoMatchingObservers: 'OB002',
  InvalidCondition: 'OB003',
  ConditionEvaluationFailed: 'OB004',
  InvalidActionConfig: 'OB005',
  ActionFailedTransient: 'OB006',
  ActionFailedPermanent: 'OB007',
  TemplateRenderingFailed: 'OB008',
  DatabaseError: 'OB009',
  ListenerConnectionFailed: 'OB010',
  UnsupportedActionType: 'OB011',
  DeadLetterQueueError: 'OB012',
  RetriesExhausted: 'OB013',
  ActionTimedOut: 'OB014',
} as const

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

export class AppError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(`${code}: ${message}`, options)
    this.name = new.target.name
    this.code = code
  }
}

/** A configuration problem (environment, observer file, action config). */
export class ConfigError extends AppError {}

/** One problem in one observer file, located by JSON path. */
export class ObserverFileError extends AppError {
  readonly file: string
  readonly path: string
  constructor(code: ErrorCode, file: string, path: string, message: string, options?: ErrorOptions) {
    super(code, `${file}${path ? ` at ${path}` : ''}: ${message}`, options)
    this.file = file
    this.path = path
  }
}

/** A condition that does not parse; `column` is 1-based. */
export class ConditionSyntaxError extends AppError {
  readonly offset: number
  readonly column: number
  readonly source: string
  constructor(source: string, offset: number, message: string) {
    super(
      ErrorCode.InvalidCondition,
      `${message} at column ${offset + 1}\n  ${source}\n  ${' '.repeat(offset)}^`,
    )
    this.source = source
    this.offset = offset
    this.column = offset + 1
  }
}

export class TemplateError extends AppError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.TemplateRenderingFailed, message, options)
  }
}

/**
 * Thrown by actions. Only the worker decides what `retryable` means for the job;
 * `retryAfterMs` carries a server's Retry-After hint.
 */
export class ActionError extends AppError {
  readonly retryable: boolean
  readonly status: number | undefined
  readonly retryAfterMs: number | undefined
  constructor(
    message: string,
    opts: { retryable: boolean; status?: number; retryAfterMs?: number; code?: ErrorCode; cause?: unknown },
  ) {
    const code =
      opts.code ?? (opts.retryable ? ErrorCode.ActionFailedTransient : ErrorCode.ActionFailedPermanent)
    super(code, message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.retryable = opts.retryable
    this.status = opts.status
    this.retryAfterMs = opts.retryAfterMs
  }
}

/** Normalises anything thrown into an Error, so every catch can start the same way. */
export function coerceError(err: unknown): Error {
  if (err instanceof Error) return err
  return new Error(typeof err === 'string' ? err : JSON.stringify(err))
}

/** The OB code of an error, if it carries one. */
export function errorCode(err: unknown): ErrorCode | undefined {
  return err instanceof AppError ? err.code : undefined
}
