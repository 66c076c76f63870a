import { createHmac, randomBytes } from 'node:crypto'
import type { Dispatcher } from 'undici'
import { stringifyExact } from '../json/exact.ts'
import type { ActionConfig } from '../observers/types.ts'
import { renderJson, renderString } from '../templates/render.ts'
import { requireEnv } from './env.ts'
import { assertOk, invalidUrl, safeUrl, sendHttp } from './http.ts'
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

function renderBody(action: WebhookAction, ctx: ActionContext): { body: string; contentType: string } {
  const tpl = action.body_template
  if (tpl === undefined) return { body: stringifyExact(ctx.delivery.event), contentType: 'application/json' }
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
  for (const [name, tpl] of Object.entries(action.headers ?? {}))
    headers[name.toLowerCase()] = renderString(tpl, ctx.scope)
  for (const [name, envName] of Object.entries(action.headers_env ?? {})) {
    headers[name.toLowerCase()] = requireEnv(ctx.config, envName, `header ${name}`)
  }
  const traceparent = childTraceparent(ctx.delivery.event.traceparent)
  if (traceparent) headers.traceparent = traceparent
  return headers
}

export function webhookUrl(action: WebhookAction, ctx: ActionContext): string {
  const raw = action.url_env
    ? requireEnv(ctx.config, action.url_env, 'url_env')
    : renderString(action.url ?? '', ctx.scope)
  if (!URL.canParse(raw) || !/^https?:$/.test(new URL(raw).protocol)) throw invalidUrl(raw)
  return raw
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
  async execute(action, ctx) {
    const url = webhookUrl(action, ctx)
    const { body, contentType } = renderBody(action, ctx)
    const headers = renderHeaders(action, ctx, contentType)
    if (action.signing_secret_env) {
      const secret = requireEnv(ctx.config, action.signing_secret_env, 'signing_secret_env')
      const timestamp = Math.floor(Date.now() / 1000)
      headers['webhook-id'] = ctx.delivery.delivery_id
      headers['webhook-timestamp'] = String(timestamp)
      headers['webhook-signature'] = signPayload(secret, ctx.delivery.delivery_id, timestamp, body)
    }
    const res = await sendHttp({ url, method: action.method ?? 'POST', headers, body, signal: ctx.signal })
    assertOk(res, `webhook ${safeUrl(url)}`)
    return { status: res.status }
  },
}
