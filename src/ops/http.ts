import type { IncomingMessage, ServerResponse } from 'node:http'
import { AppError, coerceError, ErrorCode } from '../errors.ts'
import { parseExact, stringifyExact } from '../json/exact.ts'

/** An error that maps to an HTTP status; `code` is an OB code or a short machine name. */
export class HttpError extends Error {
  readonly status: number
  readonly code: string
  constructor(status: number, code: string, message: string) {
    super(message)
    this.status = status
    this.code = code
  }
}

export const notFound = (what: string) => new HttpError(404, 'not_found', `${what} not found`)

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = stringifyExact(body)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  })
  res.end(text)
}

/** The status an error implies: its own, 400 for invalid input (OB001), else 500. */
export function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status
  return err instanceof AppError && err.code === ErrorCode.InvalidConfig ? 400 : 500
}

/** What a 500 says: database and driver messages can name tables, values and hosts. */
const internalErrorMessage = 'internal error; the worker log has the details'

/**
 * `{ "error": message, "code": code }` with the status the error implies. Messages of 5xx errors
 * that are not HttpErrors stay in the log (routes.ts logs them): the client gets the code only.
 */
export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const e = coerceError(err)
  const code = e instanceof HttpError || e instanceof AppError ? e.code : ErrorCode.DatabaseError
  const status = statusOf(e)
  const message = status >= 500 && !(e instanceof HttpError) ? internalErrorMessage : e.message
  sendJson(res, status, { error: message, code })
}

const maxBodyBytes = 1024 * 1024

/** The request's JSON body; an empty body is `{}`. */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > maxBodyBytes) throw new HttpError(413, 'body_too_large', 'request body over 1 MiB')
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8').trim()
  if (text === '') return {}
  let body: unknown
  try {
    body = parseExact(text)
  } catch {
    throw new HttpError(400, ErrorCode.InvalidConfig, 'request body is not valid JSON')
  }
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw new HttpError(400, ErrorCode.InvalidConfig, 'request body must be a JSON object')
  return body as Record<string, unknown>
}
