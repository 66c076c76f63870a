import { actionTypes } from '../actions/registry.ts'
import type { ActionContext } from '../actions/types.ts'
import type { Config } from '../config/config.ts'
import { describeError } from '../errors/errors.ts'
import type { Delivery } from '../event/delivery.ts'
import { type Logger, maskUrlCredentials } from '../log/log.ts'
import type { Observer } from '../observers/types.ts'
import { actionTimeoutMs } from '../queue/policy.ts'
import { templateScope } from '../templates/render.ts'
import { renderActionOptions } from './dry-run.ts'
import { referencedEnvNames, secretValues } from './secrets.ts'

const redacted = '[redacted]'

/**
 * What a delivery's attempt sends, rendered now from its job: the HTTP request of an HTTP action
 * (method, URL, headers, body), or the rendered options of any other action; secrets redacted.
 */
export type RenderedRequest =
  | { kind: 'http'; method: string; url: string; headers: Record<string, string>; body: string }
  | { kind: 'options'; options: Record<string, unknown>; errors: string[] }
  | { kind: 'error'; error: string }

/** Replaces every secret value in `text`; `secrets` come longest first, so no secret leaves a tail. */
function scrub(text: string, secrets: readonly string[]): string {
  let out = text
  for (const s of secrets) if (out.includes(s)) out = out.replaceAll(s, redacted)
  return out
}

function scrubDeep(value: unknown, secrets: readonly string[]): unknown {
  if (typeof value === 'string') return scrub(value, secrets)
  if (Array.isArray(value)) return value.map((v) => scrubDeep(v, secrets))
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubDeep(v, secrets)]))
  return value
}

/**
 * Renders `attempt` of `delivery` as the worker would send it, with this process's environment.
 * Secret headers, an `url_env` URL (shown as its origin) and any secret value anywhere in the
 * request are redacted; a request that cannot be rendered says why, as the attempt would.
 */
export function renderRequest(
  delivery: Delivery,
  attempt: number,
  deps: { config: Config; log: Logger; observers: readonly Observer[] },
): RenderedRequest {
  const env = deps.config.env
  const own = referencedEnvNames(delivery.action).map((n) => env[n])
  // A value of one to three characters would redact ordinary text all over the body.
  const secrets = [...secretValues(deps.config, deps.observers), ...own]
    .filter((s): s is string => typeof s === 'string' && s.length >= 4)
    .sort((a, b) => b.length - a.length)
  const ctx: ActionContext = {
    config: deps.config,
    log: deps.log,
    delivery,
    attempt,
    signal: new AbortController().signal,
    timeoutMs: actionTimeoutMs(delivery.action),
    scope: templateScope(delivery, attempt),
  }
  const type = actionTypes.get(delivery.action.type)
  try {
    if (!type?.request) {
      const { rendered, errors } = renderActionOptions(delivery.action, ctx.scope, deps.config)
      return { kind: 'options', options: scrubDeep(rendered, secrets) as Record<string, unknown>, errors }
    }
    const r = type.request(delivery.action, ctx)
    const headers = Object.fromEntries(
      Object.entries(r.headers).map(([k, v]) => [
        k,
        r.secretHeaders.includes(k) ? redacted : scrub(v, secrets),
      ]),
    )
    const url = r.urlIsSecret ? r.label : scrub(maskUrlCredentials(r.url), secrets)
    return { kind: 'http', method: r.method, url, headers, body: scrub(r.body, secrets) }
  } catch (err) {
    return { kind: 'error', error: scrub(describeError(err), secrets) }
  }
}
