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
  InvalidRequest: 'OB015',
} as const

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/**
 * What the ops API answers about the request itself, in HTTP's own words, where no OB code
 * applies: no such route or item, no credentials, a body too large.
 */
export const RequestCode = {
  NotFound: 'not_found',
  MethodNotAllowed: 'method_not_allowed',
  Unauthorized: 'unauthorized',
  Forbidden: 'forbidden',
  BodyTooLarge: 'body_too_large',
  Conflict: 'conflict',
  StreamFull: 'stream_full',
  /** A failure of ours the client cannot act on; the worker log has the details. */
  Internal: 'internal_error',
} as const

export type RequestCode = (typeof RequestCode)[keyof typeof RequestCode]

/**
 * Every error we raise: a stable `code` and a `message` that does not repeat it. Operators see
 * both together (`describeError`); branch on `code` or the class, never on the message.
 */
export class AppError<C extends ErrorCode | RequestCode = ErrorCode> extends Error {
  readonly code: C
  constructor(code: C, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }

  override toString(): string {
    return `${this.code}: ${this.message}`
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

/** Input a request or command cannot use: a bad query parameter, body field or argument. */
export class InputError extends AppError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.InvalidRequest, message, options)
  }
}

/** An ops API answer other than 200: its status, and an OB code or HTTP's own word for the problem. */
export class HttpError extends AppError<ErrorCode | RequestCode> {
  readonly status: number
  constructor(status: number, code: ErrorCode | RequestCode, message: string, options?: ErrorOptions) {
    super(code, message, options)
    this.status = status
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

/** The code of an error, if it carries one. */
export function errorCode(err: unknown): ErrorCode | RequestCode | undefined {
  return err instanceof AppError ? err.code : undefined
}

/** How an operator reads an error (CLI output, a log line, an attempt record): `OB005: message`. */
export function describeError(err: unknown): string {
  const e = coerceError(err)
  return e instanceof AppError ? `${e.code}: ${e.message}` : e.message
}
