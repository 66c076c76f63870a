import { Agent, type Dispatcher, errors, request } from 'undici'
import { ActionError, coerceError, ErrorCode } from '../errors.ts'
import { maskUrlCredentials } from '../log.ts'

/** One keep-alive pool for every HTTP action in the process. */
const agent = new Agent({ keepAliveTimeout: 30_000, connections: 128, pipelining: 1 })

export interface HttpRequest {
  url: string
  method: Dispatcher.HttpMethod
  headers: Record<string, string>
  body?: string
  signal: AbortSignal
}

export interface HttpResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

const bodyExcerptChars = 500

/** Statuses worth retrying: the server may answer differently later. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value
  if (!text) return undefined
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/** Sends a request; network errors and timeouts become retryable ActionErrors. */
export async function sendHttp(req: HttpRequest): Promise<HttpResponse> {
  try {
    const res = await request(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body ?? null,
      signal: req.signal,
      dispatcher: agent,
    })
    const body = await res.body.text()
    return { status: res.statusCode, headers: res.headers, body }
  } catch (err) {
    if (req.signal.aborted) throw abortError(req.signal, err)
    const e = coerceError(err)
    const reason = e instanceof errors.UndiciError ? e.message : `${e.name}: ${e.message}`
    throw new ActionError(`request to ${safeUrl(req.url)} failed: ${reason}`, { retryable: true, cause: err })
  }
}

function abortError(signal: AbortSignal, cause: unknown): ActionError {
  const reason = signal.reason
  if (reason instanceof ActionError) return reason
  return new ActionError('request aborted', { retryable: true, cause })
}

/** Turns a non-2xx response into the ActionError the retry policy needs. */
export function assertOk(res: HttpResponse, what: string): void {
  if (res.status >= 200 && res.status < 300) return
  const retryable = isTransientStatus(res.status)
  const retryAfterMs = parseRetryAfter(res.headers['retry-after'])
  throw new ActionError(`${what} answered ${res.status}: ${excerpt(res.body)}`, {
    retryable,
    status: res.status,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  })
}

export function excerpt(body: string): string {
  return body.length > bodyExcerptChars ? `${body.slice(0, bodyExcerptChars)}…` : body
}

/** A URL fit for logs and error messages: no credentials, no query string. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url)
    return maskUrlCredentials(`${u.protocol}//${u.username ? '***@' : ''}${u.host}${u.pathname}`)
  } catch {
    return '(invalid url)'
  }
}

export function invalidUrl(url: string): ActionError {
  return new ActionError(`invalid URL "${safeUrl(url)}"`, {
    retryable: false,
    code: ErrorCode.InvalidActionConfig,
  })
}
