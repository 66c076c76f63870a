import { createHmac, randomBytes } from 'node:crypto'
import type { Dispatcher } from 'undici'
import { ActionError, ErrorCode, TemplateError } from '../errors/errors.ts'
import { stringifyExact } from '../json/exact.ts'
import type { ActionConfig } from '../observers/types.ts'
import { renderJson, renderString } from '../templates/render.ts'
import { requireEnv } from './env.ts'
import { assertOk, invalidUrl, originLabel, safeUrl, sendHttp } from './http.ts'
import type { ActionContext, ActionType } from './types.ts'

export interface WebhookAction extends ActionConfig {
  type: 'webhook'
  url?: string
  url_env?: string
  method?: Dispatcher.HttpMethod
  headers?: Record<string, string>
  headers_env?: Record<string, string>
  body_template?: string | Record<string, unknown> | unknown[]
  signing_secret_env?: string
}

/**
 * Standard Webhooks signature: base64 HMAC-SHA256 of `id.timestamp.body`. A `whsec_` secret is
 * base64 after the prefix, as the specification defines; any other secret is used as UTF-8 bytes.
 */
export function signPayload(secret: string, id: string, timestamp: number, body: string): string {
  const key = secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret)
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`
}

/** A child span of the change's W3C trace context, so the receiver's trace joins the writer's. */
export function childTraceparent(parent: string | null | undefined): string | undefined {
  const m = parent && /^([0-9a-f]{2})-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$/.exec(parent)
  if (!m) return undefined
  return `00-${m[2]}-${randomBytes(8).toString('hex')}-${m[3]}`
}

/** The event's keys in the order SPEC §5 and docs/observers.md show them. */
const eventKeyOrder = [
  'id',
  'seq',
  'event',
  'entity',
  'entity_id',
  'before',
  'after',
  'changed',
  'tenant_id',
  'actor_id',
  'txid',
  'created_at',
] as const

/**
 * The default body: the event in its documented key order (any further event field after it),
 * then which delivery this is: `observer`, `delivery_id` (receivers dedupe on it) and `attempt`.
 */
export function defaultBody(ctx: ActionContext): Record<string, unknown> {
  const { delivery } = ctx
  const event: Record<string, unknown> = { ...delivery.event }
  const body: Record<string, unknown> = {}
  for (const key of eventKeyOrder) body[key] = event[key]
  for (const [key, value] of Object.entries(event)) if (!(key in body)) body[key] = value
  return { ...body, observer: delivery.observer, delivery_id: delivery.delivery_id, attempt: ctx.attempt }
}

function renderBody(action: WebhookAction, ctx: ActionContext): { body: string; contentType: string } {
  const tpl = action.body_template
  if (tpl === undefined) return { body: stringifyExact(defaultBody(ctx)), contentType: 'application/json' }
  if (typeof tpl === 'string')
    return { body: renderString(tpl, ctx.scope), contentType: 'text/plain; charset=utf-8' }
  return { body: stringifyExact(renderJson(tpl, ctx.scope)), contentType: 'application/json' }
}

function renderHeaders(
  action: WebhookAction,
  ctx: ActionContext,
  contentType: string,
): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': contentType, 'user-agent': 'pg-observers' }
  for (const [name, tpl] of Object.entries(action.headers ?? {})) {
    const value = renderString(tpl, ctx.scope)
    // A line break would end the header (or smuggle another); no attempt can ever send it.
    if (/[\r\n\0]/.test(value)) throw new TemplateError(`header ${name} rendered a line break or NUL`)
    headers[name.toLowerCase()] = value
  }
  for (const [name, envName] of Object.entries(action.headers_env ?? {})) {
    headers[name.toLowerCase()] = requireEnv(ctx.config, envName, `header ${name}`)
  }
  const traceparent = childTraceparent(ctx.delivery.event.traceparent)
  if (traceparent) headers.traceparent = traceparent
  return headers
}

/**
 * A dot segment (`.`, `..`, in any percent-encoded spelling) in a rendered URL's path: URL
 * parsers remove it, so a row value `..` would move a `DELETE /items/{{ id }}` up to `/items/`.
 */
function hasDotSegment(url: string): boolean {
  const path = url
    .replace(/[\t\n\r]/g, '')
    .replace(/^[a-z][a-z0-9+.-]*:[\\/]{2}[^/\\?#]*/i, '')
    .replace(/[?#].*$/s, '')
  return path.split(/[\\/]/).some((segment) => /^(?:\.|%2e){1,2}$/i.test(segment))
}

/** The URL to call and how errors may name it: an env URL is a secret, shown as its origin only. */
export function webhookUrl(action: WebhookAction, ctx: ActionContext): { url: string; label: string } {
  if (action.url_env) {
    const url = requireEnv(ctx.config, action.url_env, 'url_env')
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
      throw new ActionError(`url_env: ${action.url_env} does not hold an http(s) URL`, {
        retryable: false,
        code: ErrorCode.InvalidActionConfig,
      })
    }
    return { url, label: originLabel(url) }
  }
  const url = renderString(action.url ?? '', ctx.scope)
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw invalidUrl(url)
  if (hasDotSegment(url)) {
    throw new TemplateError(
      `url "${safeUrl(url)}" rendered a "." or ".." path segment; put row values in a path with the path_segment filter`,
    )
  }
  return { url, label: safeUrl(url) }
}

/** The request one attempt sends, signed for now. */
function webhookRequest(action: WebhookAction, ctx: ActionContext) {
  const { url, label } = webhookUrl(action, ctx)
  const { body, contentType } = renderBody(action, ctx)
  const headers = renderHeaders(action, ctx, contentType)
  // Standard Webhooks identity headers on every request, signed or not: receivers dedupe on webhook-id.
  const timestamp = Math.floor(Date.now() / 1000)
  headers['webhook-id'] = ctx.delivery.delivery_id
  headers['webhook-timestamp'] = String(timestamp)
  if (action.signing_secret_env) {
    const secret = requireEnv(ctx.config, action.signing_secret_env, 'signing_secret_env')
    headers['webhook-signature'] = signPayload(secret, ctx.delivery.delivery_id, timestamp, body)
  }
  const secretHeaders = Object.keys(action.headers_env ?? {}).map((n) => n.toLowerCase())
  if (action.signing_secret_env) secretHeaders.push('webhook-signature')
  const method: Dispatcher.HttpMethod = action.method ?? 'POST'
  return { method, url, label, urlIsSecret: action.url_env !== undefined, headers, secretHeaders, body }
}

export const webhook: ActionType<WebhookAction> = {
  type: 'webhook',
  defaultTimeoutMs: 10_000,
  missingTransport: (action, config) =>
    [action.url_env, action.signing_secret_env, ...Object.values(action.headers_env ?? {})].filter(
      (n): n is string => typeof n === 'string' && !config.env[n],
    ),
  templates: (action) => [action.url, ...Object.values(action.headers ?? {}), action.body_template],
  destination: (action) => (action.url_env ? `env:${action.url_env}` : safeUrl(action.url ?? '')),
  request: webhookRequest,
  async execute(action, ctx) {
    const { url, label, method, headers, body } = webhookRequest(action, ctx)
    const res = await sendHttp({ url, method, headers, body, signal: ctx.signal, label })
    assertOk(res, `webhook ${label}`)
    return { status: res.status }
  },
}
