import type { RequestDetails } from 'web-push'
import type { Config } from '../config/config.ts'
import { ActionError, coerceError, ErrorCode } from '../errors/errors.ts'
import { stringifyExact } from '../json/exact.ts'
import { startHttpSpan } from '../ops/tracing.ts'
import { lazyModule } from '../runtime/lazy.ts'
import { renderJson } from '../templates/render.ts'
import { requireEnv } from './env.ts'
import { assertOk, deliveryIdHeader, type HttpResponse, httpDispatcher } from './http.ts'
import type { PushAction, PushContent } from './push-types.ts'
import { BlockedAddressError } from './ssrf.ts'
import type { ActionContext, ActionResult } from './types.ts'

const undici = lazyModule<typeof import('undici')>('undici')
const webpush = lazyModule<typeof import('web-push')>('web-push')

export const vapidVariables = ['VAPID_PUBLIC_KEY', 'VAPID_PRIVATE_KEY', 'VAPID_SUBJECT'] as const

interface Subscription {
  endpoint: string
  keys: { p256dh: string; auth: string }
}

interface Vapid {
  subject: string
  publicKey: string
  privateKey: string
}

const checkedVapid = new Set<string>()

/** VAPID settings from the environment, checked once by signing a throwaway claim. */
function vapidFrom(config: Config): Vapid {
  const [publicKey, privateKey, subject] = vapidVariables.map((name) =>
    requireEnv(config, name, 'push (webpush)'),
  )
  const vapid = {
    subject: subject as string,
    publicKey: publicKey as string,
    privateKey: privateKey as string,
  }
  const key = `${vapid.subject}\u0000${vapid.publicKey}\u0000${vapid.privateKey}`
  if (checkedVapid.has(key)) return vapid
  try {
    webpush().getVapidHeaders(
      'https://push.invalid',
      vapid.subject,
      vapid.publicKey,
      vapid.privateKey,
      'aes128gcm',
    )
  } catch (err) {
    throw new ActionError(`VAPID settings are invalid: ${coerceError(err).message}`, {
      retryable: false,
      code: ErrorCode.InvalidActionConfig,
    })
  }
  checkedVapid.add(key)
  return vapid
}

/** device_token renders to the browser's PushSubscription: a JSON text, or an object from a json column. */
function subscriptionOf(value: unknown): Subscription {
  let parsed = value
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value)
    } catch {
      parsed = undefined
    }
  }
  const s = parsed as Partial<Subscription> | null | undefined
  const valid =
    typeof s?.endpoint === 'string' &&
    /^https?:\/\/[^/]/.test(s.endpoint) &&
    typeof s.keys?.p256dh === 'string' &&
    typeof s.keys.auth === 'string'
  if (!valid) {
    throw new ActionError(
      'device_token is not a Web Push subscription {endpoint, keys: {p256dh, auth}}; nothing sent',
      {
        retryable: false,
      },
    )
  }
  return s as Subscription
}

/** The push endpoint's path is the subscription's capability: only its host goes into messages. */
async function post(details: RequestDetails, host: string, signal: AbortSignal): Promise<HttpResponse> {
  const span = startHttpSpan('POST', details.endpoint, `https://${host}/…`)
  const headers = {
    ...Object.fromEntries(Object.entries(details.headers).map(([k, v]) => [k, String(v)])),
    ...span?.headers,
  }
  try {
    const dispatcher = httpDispatcher()
    const res = await undici().request(details.endpoint, {
      method: 'POST',
      headers,
      body: details.body,
      signal,
      dispatcher,
    })
    const body = await res.body.text()
    span?.end(res.statusCode)
    return { status: res.statusCode, headers: res.headers, body }
  } catch (err) {
    span?.end(undefined, coerceError(err))
    if (signal.aborted && signal.reason instanceof ActionError) throw signal.reason
    if (err instanceof BlockedAddressError) {
      throw new ActionError(`push service ${host}: ${err.message}`, {
        retryable: false,
      })
    }
    throw new ActionError(`push service ${host} unreachable: ${coerceError(err).message}`, {
      retryable: true,
      cause: err,
    })
  }
}

/** Encrypts the notification for the subscription (aes128gcm) and posts it with a VAPID JWT. */
export async function sendWebPush(
  action: PushAction,
  ctx: ActionContext,
  content: PushContent,
): Promise<ActionResult> {
  const vapid = vapidFrom(ctx.config)
  const subscription = subscriptionOf(renderJson(action.device_token, ctx.scope))
  let details: RequestDetails
  try {
    details = webpush().generateRequestDetails(subscription, stringifyExact(content), { vapidDetails: vapid })
  } catch (err) {
    throw new ActionError(`cannot encrypt for this subscription: ${coerceError(err).message}; nothing sent`, {
      retryable: false,
    })
  }
  details.headers[deliveryIdHeader] = ctx.delivery.delivery_id
  const host = new URL(subscription.endpoint).host
  const res = await post(details, host, ctx.signal)
  if (res.status === 404 || res.status === 410) {
    throw new ActionError(
      `push service ${host} answered ${res.status}: the subscription has expired or was removed`,
      {
        retryable: false,
        status: res.status,
      },
    )
  }
  assertOk(res, `push service ${host}`)
  return { status: res.status, detail: { provider: 'webpush' } }
}
