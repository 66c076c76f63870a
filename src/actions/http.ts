import type { Agent, Dispatcher } from 'undici'
import { ActionError, coerceError, ErrorCode } from '../errors/errors.ts'
import { maskUrlCredentials } from '../log/log.ts'
import { startHttpSpan } from '../ops/tracing.ts'
import { lazyModule } from '../runtime/lazy.ts'
import { BlockedAddressError, guardedConnector } from './ssrf.ts'

const undici = lazyModule<typeof import('undici')>('undici')

function createAgent(blockPrivateNetworks: boolean): Agent {
  return new (undici().Agent)({
    keepAliveTimeout: 30_000,
    connections: 128,
    pipelining: 1,
    ...(blockPrivateNetworks ? { connect: guardedConnector({ timeoutMs: 10_000 }) } : {}),
  })
}

let blockPrivateNetworks = false
/**
 * One keep-alive pool for every HTTP action in the process, built on the first request. Redirects
 * are never followed (undici's request() does not), so a 3xx cannot lead a delivery to another
 * address.
 */
let agent: Agent | undefined

function currentAgent(): Agent {
  agent ??= createAgent(blockPrivateNetworks)
  return agent
}

/** Applies process-wide HTTP settings; called once at worker start. */
export function configureHttp(opts: { blockPrivateNetworks: boolean }): void {
  const previous = agent
  blockPrivateNetworks = opts.blockPrivateNetworks
  agent = undefined
  void previous?.close().catch(() => {})
}

/** The process-wide (and, when configured, SSRF-guarded) dispatcher, for actions calling undici themselves. */
export function httpDispatcher(): Dispatcher {
  return currentAgent()
}

export interface HttpRequest {
  url: string
  method: Dispatcher.HttpMethod
  headers: Record<string, string>
  body?: string
  signal: AbortSignal
  /** How errors name the destination; default: the URL without credentials or query string. */
  label?: string
}

export interface HttpResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

const bodyExcerptChars = 500

/** The header carrying `delivery_id` on HTTP actions whose protocol has no field of its own for it. */
export const deliveryIdHeader = 'x-observers-delivery-id'

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

/**
 * `https://user:pass@host/…` means Basic auth, as curl reads it; undici would drop the
 * credentials silently, so they move into the Authorization header (unless one is set).
 */
export function moveUrlCredentials(url: string, headers: Record<string, string>): string {
  if (!URL.canParse(url)) return url
  const u = new URL(url)
  if (!u.username && !u.password) return url
  const user = decodeURIComponent(u.username)
  const password = decodeURIComponent(u.password)
  const hasAuth = Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')
  if (!hasAuth) headers.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
  u.username = ''
  u.password = ''
  return u.toString()
}

/**
 * Sends a request; network errors and timeouts become retryable ActionErrors. Inside a traced
 * attempt it is a client span whose W3C context the request carries (`traceparent`).
 */
export async function sendHttp(req: HttpRequest): Promise<HttpResponse> {
  const label = req.label ?? safeUrl(req.url)
  const span = startHttpSpan(req.method, req.url, label)
  try {
    const headers = { ...req.headers, ...span?.headers }
    const res = await undici().request(moveUrlCredentials(req.url, headers), {
      method: req.method,
      headers,
      body: req.body ?? null,
      signal: req.signal,
      dispatcher: currentAgent(),
    })
    const body = await res.body.text()
    span?.end(res.statusCode)
    return { status: res.statusCode, headers: res.headers, body }
  } catch (err) {
    span?.end(undefined, coerceError(err))
    if (req.signal.aborted) throw abortError(req.signal, err)
    if (err instanceof BlockedAddressError) {
      throw new ActionError(`request to ${label} failed: ${err.message}`, { retryable: false, cause: err })
    }
    // A header or method undici refuses is refused again on every attempt.
    if (err instanceof undici().errors.InvalidArgumentError) {
      throw new ActionError(`request to ${label} not sent: ${err.message}`, { retryable: false, cause: err })
    }
    const e = coerceError(err)
    const reason = e instanceof undici().errors.UndiciError ? e.message : `${e.name}: ${e.message}`
    throw new ActionError(`request to ${label} failed: ${reason}`, { retryable: true, cause: err })
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

/**
 * A URL whose whole value is a secret (read from the environment: Zapier- or Discord-style hooks
 * carry the credential in the path), named by what is safe to show: scheme, host and port.
 */
export function originLabel(url: string): string {
  try {
    const u = new URL(url)
    const port = u.port || (u.protocol === 'https:' ? '443' : u.protocol === 'http:' ? '80' : '')
    return `${u.protocol}//${u.hostname}${port ? `:${port}` : ''}/…`
  } catch {
    return '(invalid url)'
  }
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
