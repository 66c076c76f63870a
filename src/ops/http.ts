import type { IncomingMessage, ServerResponse } from 'node:http'
import { AppError, coerceError, ErrorCode, HttpError, InputError, RequestCode } from '../errors/errors.ts'
import { parseExact, stringifyExact } from '../json/exact.ts'

export const notFound = (what: string) => new HttpError(404, RequestCode.NotFound, `${what} not found`)

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = stringifyExact(body)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  })
  res.end(text)
}

/** Input the caller can fix: its request, or (backfill, fire) the table or row it names. */
const clientCodes = new Set<string>([ErrorCode.InvalidRequest, ErrorCode.InvalidConfig])

/** The status an error implies: its own, 400 for input the caller can fix, else 500. */
export function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status
  return err instanceof AppError && clientCodes.has(err.code) ? 400 : 500
}

/** What a 500 says: database and driver messages can name tables, values and hosts. */
const internalErrorMessage = 'internal error; the worker log has the details'

/**
 * `{ "code": code, "message": message }` with the status the error implies. A 5xx we did not
 * choose says only its code and a generic message; routes.ts logs the details.
 */
export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const e = coerceError(err)
  const code = e instanceof AppError ? e.code : RequestCode.Internal
  const status = statusOf(e)
  const message = status >= 500 && !(e instanceof HttpError) ? internalErrorMessage : e.message
  sendJson(res, status, { code, message })
}

const maxBodyBytes = 1024 * 1024

/** The request's JSON body; an empty body is `{}`. */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > maxBodyBytes) throw new HttpError(413, RequestCode.BodyTooLarge, 'request body over 1 MiB')
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8').trim()
  if (text === '') return {}
  let body: unknown
  try {
    body = parseExact(text)
  } catch {
    throw new InputError('request body is not valid JSON')
  }
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw new InputError('request body must be a JSON object')
  return body as Record<string, unknown>
}
