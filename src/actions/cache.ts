import { ActionError, coerceError, ErrorCode, TemplateError } from '../errors/errors.ts'
import { stringifyExact } from '../json/exact.ts'
import type { ActionConfig } from '../observers/types.ts'
import { renderJson, renderString } from '../templates/render.ts'
import { missingEnv, requireEnv } from './env.ts'
import { invalidUrl } from './http.ts'
import { isTransientReply, type RedisClient, redisClient, redisErrorReply } from './redis-clients.ts'
import type { ActionContext, ActionType } from './types.ts'

export interface CacheAction extends ActionConfig {
  type: 'cache'
  key_pattern: string
  action?: 'invalidate' | 'refresh'
  value_template?: string | Record<string, unknown> | unknown[]
  ttl_seconds?: number
}

const scanCount = 500
const globChars = /[*?[]/
const globSpecials = /[*?[\]\\]/g

/**
 * A key_pattern is a pattern when its literal text (outside Liquid tags) holds a glob character.
 * Values from the row are escaped, so a `*` in a column matches only a `*`.
 */
export function isGlobTemplate(source: string): boolean {
  return globChars.test(source.replace(/\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}/g, ''))
}

function escapeGlob(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(globSpecials, '\\$&')
  if (Array.isArray(value)) return value.map(escapeGlob)
  if (value && typeof value === 'object' && value.constructor === Object) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, escapeGlob(v)]))
  }
  return value
}

function renderKey(action: CacheAction, ctx: ActionContext): { key: string; glob: boolean } {
  const glob = isGlobTemplate(action.key_pattern)
  const scope = glob ? (escapeGlob(ctx.scope) as Record<string, unknown>) : ctx.scope
  const key = renderString(action.key_pattern, scope)
  if (!key) throw new TemplateError('key_pattern rendered an empty key')
  return { key, glob }
}

function renderValue(action: CacheAction, ctx: ActionContext): string {
  const tpl = action.value_template
  if (tpl === undefined) {
    throw new ActionError('cache refresh needs value_template', {
      retryable: false,
      code: ErrorCode.InvalidActionConfig,
    })
  }
  return typeof tpl === 'string' ? renderString(tpl, ctx.scope) : stringifyExact(renderJson(tpl, ctx.scope))
}

/** SCAN MATCH in batches, unlinking each batch as it arrives; KEYS would block the server. */
async function unlinkMatching(client: RedisClient, pattern: string, signal: AbortSignal): Promise<number> {
  let cursor = '0'
  let removed = 0
  do {
    if (signal.aborted) throw signal.reason
    const reply = await client.scan(cursor, { MATCH: pattern, COUNT: scanCount })
    cursor = String(reply.cursor)
    if (reply.keys.length > 0) removed += await client.unlink(reply.keys)
  } while (cursor !== '0')
  return removed
}

function redisFailure(err: unknown, what: string, signal: AbortSignal): Error {
  if (signal.aborted && signal.reason instanceof Error) return signal.reason
  const e = coerceError(err)
  if (e instanceof ActionError) return e
  if (e instanceof redisErrorReply()) {
    return new ActionError(`${what}: redis answered ${e.message}`, {
      retryable: isTransientReply(e),
      cause: err,
    })
  }
  return new ActionError(`${what}: ${e.message}`, { retryable: true, cause: err })
}

async function run(action: CacheAction, ctx: ActionContext, client: RedisClient) {
  const { key, glob } = renderKey(action, ctx)
  if ((action.action ?? 'invalidate') === 'invalidate') {
    const removed = glob ? await unlinkMatching(client, key, ctx.signal) : await client.unlink(key)
    return { detail: { operation: 'invalidate', key, removed } }
  }
  if (glob) {
    throw new ActionError(
      `cache refresh needs one key, but key_pattern "${action.key_pattern}" is a pattern`,
      {
        retryable: false,
        code: ErrorCode.InvalidActionConfig,
      },
    )
  }
  const value = renderValue(action, ctx)
  const ttl = action.ttl_seconds
  await client.set(key, value, ttl === undefined ? {} : { expiration: { type: 'EX', value: ttl } })
  return { detail: { operation: 'refresh', key, ...(ttl === undefined ? {} : { ttl_seconds: ttl }) } }
}

/** Invalidates (UNLINK, or SCAN + UNLINK for patterns) or refreshes (SET) Redis keys. */
export const cache: ActionType<CacheAction> = {
  type: 'cache',
  defaultTimeoutMs: 5_000,
  missingTransport: (_action, config) => missingEnv(config, ['REDIS_URL']),
  templates: (action) => [action.key_pattern, action.value_template],
  destination: () => 'env:REDIS_URL',
  async execute(action, ctx) {
    const url = requireEnv(ctx.config, 'REDIS_URL', 'cache')
    if (!URL.canParse(url) || !/^rediss?:$/.test(new URL(url).protocol)) throw invalidUrl(url)
    const what = `cache ${action.action ?? 'invalidate'}`
    try {
      const client = await redisClient(url, ctx.log)
      return await run(action, ctx, client.withAbortSignal(ctx.signal) as RedisClient)
    } catch (err) {
      if (err instanceof TemplateError) throw err
      throw redisFailure(err, what, ctx.signal)
    }
  },
}
