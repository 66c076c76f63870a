import { createHash } from 'node:crypto'
import { ActionError, ErrorCode, TemplateError } from '../errors/errors.ts'
import { stringifyExact } from '../json/exact.ts'
import type { ActionConfig } from '../observers/types.ts'
import { renderJson, renderString } from '../templates/render.ts'
import { missingEnv, requireEnv } from './env.ts'
import { assertOk, deliveryIdHeader, type HttpResponse, sendHttp } from './http.ts'
import { parseReply } from './reply.ts'
import type { ActionContext, ActionType } from './types.ts'

export interface SlackAction extends ActionConfig {
  type: 'slack'
  webhook_url?: string
  webhook_url_env?: string
  channel?: string
  message_template: string
  blocks_template?: string | unknown[] | Record<string, unknown>
}

/**
 * The webhook URL is itself the credential (its path holds the token), so only its host may
 * appear in messages, logs and job rows.
 */
function webhookUrl(action: SlackAction, ctx: ActionContext): URL {
  const raw = action.webhook_url_env
    ? requireEnv(ctx.config, action.webhook_url_env, 'webhook_url_env')
    : (action.webhook_url ?? '')
  const url = URL.canParse(raw) ? new URL(raw) : undefined
  if (!url || !/^https?:$/.test(url.protocol)) {
    throw new ActionError('slack webhook URL is not an http(s) URL', {
      retryable: false,
      code: ErrorCode.InvalidActionConfig,
    })
  }
  return url
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new TemplateError(`blocks_template did not render to JSON (use the json filter for values)`, {
      cause: err,
    })
  }
}

/** Blocks as an array; a Block Kit Builder export (`{"blocks": [...]}`) is accepted too. */
export function renderBlocks(template: SlackAction['blocks_template'], scope: object): unknown[] | undefined {
  if (template === undefined) return undefined
  const value =
    typeof template === 'string' ? parseJson(renderString(template, scope)) : renderJson(template, scope)
  const blocks = value && typeof value === 'object' && 'blocks' in value ? value.blocks : value
  if (!Array.isArray(blocks)) throw new TemplateError('blocks_template must render to a JSON array of blocks')
  return blocks
}

/**
 * Incoming webhooks answer 200 `ok`; errors come as 4xx/5xx with a plain-text code such as
 * `channel_not_found`. Workflow webhooks answer JSON, where `"ok": false` is a failure too.
 */
function assertSlackOk(res: HttpResponse, what: string): void {
  assertOk(res, what)
  const parsed = parseReply<{ ok: unknown; error: unknown }>(res.body)
  if (parsed.ok !== false) return
  throw new ActionError(`${what} answered ${res.status}: ${String(parsed.error ?? res.body)}`, {
    retryable: parsed.error === 'ratelimited',
    status: res.status,
  })
}

async function post(url: URL, body: string, ctx: ActionContext): Promise<HttpResponse> {
  try {
    return await sendHttp({
      url: url.href,
      method: 'POST',
      headers: {
        'content-type': 'application/json; charset=utf-8',
        'user-agent': 'pg-observers',
        [deliveryIdHeader]: ctx.delivery.delivery_id,
      },
      body,
      signal: ctx.signal,
    })
  } catch (err) {
    if (!(err instanceof ActionError) || url.pathname.length < 2) throw err
    // Network errors name the URL; keep the token in its path out of the message.
    const message = err.message.replaceAll(url.pathname, '/***')
    throw new ActionError(message, {
      retryable: err.retryable,
      code: err.code,
      cause: err.cause,
    })
  }
}

export const slack: ActionType<SlackAction> = {
  type: 'slack',
  defaultTimeoutMs: 10_000,
  missingTransport: (action, config) => missingEnv(config, [action.webhook_url_env]),
  templates: (action) => [action.message_template, action.channel, action.blocks_template],
  destination: (action) =>
    action.webhook_url_env
      ? `env:${action.webhook_url_env}`
      : createHash('sha256')
          .update(action.webhook_url ?? '')
          .digest('hex')
          .slice(0, 16),
  async execute(action, ctx) {
    const url = webhookUrl(action, ctx)
    const payload = {
      text: renderString(action.message_template, ctx.scope),
      ...(action.channel === undefined ? {} : { channel: renderString(action.channel, ctx.scope) }),
      ...(action.blocks_template === undefined
        ? {}
        : { blocks: renderBlocks(action.blocks_template, ctx.scope) }),
    }
    const res = await post(url, stringifyExact(payload), ctx)
    assertSlackOk(res, `slack webhook ${url.host}`)
    return { status: res.status }
  },
}
