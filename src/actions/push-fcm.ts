import { ActionError } from '../errors/errors.ts'
import { stringifyExact } from '../json/exact.ts'
import { renderString } from '../templates/render.ts'
import { requireEnv } from './env.ts'
import { fcmAccessToken, fcmCredentials } from './fcm-token.ts'
import {
  deliveryIdHeader,
  excerpt,
  type HttpResponse,
  isTransientStatus,
  parseRetryAfter,
  sendHttp,
} from './http.ts'
import type { PushAction, PushContent } from './push-types.ts'
import { parseReply } from './reply.ts'
import type { ActionContext, ActionResult } from './types.ts'

const defaultApiBase = 'https://fcm.googleapis.com'

/** FCM's data map takes string values only; anything else is sent as its JSON text. */
export function fcmData(data: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(data).map(([k, v]) => [k, typeof v === 'string' ? v : stringifyExact(v)]),
  )
}

function fcmMessage(token: string, content: PushContent): Record<string, unknown> {
  const { title, body, data } = content
  return {
    token,
    ...(title === undefined && body === undefined
      ? {}
      : {
          notification: {
            ...(title === undefined ? {} : { title }),
            ...(body === undefined ? {} : { body }),
          },
        }),
    ...(data === undefined ? {} : { data: fcmData(data) }),
  }
}

interface FcmErrorReply {
  error: { message?: string; status?: string; details?: Array<{ errorCode?: unknown }> }
}

/**
 * FCM v1 errors: 404 UNREGISTERED (the token is gone) and 400 INVALID_ARGUMENT are permanent,
 * 429 QUOTA_EXCEEDED and 5xx UNAVAILABLE/INTERNAL are transient, with Retry-After when given.
 */
function assertFcmOk(res: HttpResponse): void {
  if (res.status >= 200 && res.status < 300) return
  const error = parseReply<FcmErrorReply>(res.body).error
  const detail = error?.details?.find((d) => typeof d.errorCode === 'string')?.errorCode
  const reason = typeof detail === 'string' ? detail : error?.status
  const retryAfterMs = parseRetryAfter(res.headers['retry-after'])
  throw new ActionError(
    `FCM answered ${res.status}${reason ? ` ${reason}` : ''}: ${error?.message ?? excerpt(res.body)}`,
    {
      retryable: isTransientStatus(res.status),
      status: res.status,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    },
  )
}

/** Sends through FCM HTTP v1 with an OAuth2 token of the service account. */
export async function sendFcm(
  action: PushAction,
  ctx: ActionContext,
  content: PushContent,
): Promise<ActionResult> {
  const credentials = fcmCredentials(requireEnv(ctx.config, 'FCM_SERVICE_ACCOUNT', 'push (fcm)'))
  const token = renderString(action.device_token, ctx.scope).trim()
  if (!token) throw new ActionError('device_token rendered empty; nothing sent', { retryable: false })
  const body = stringifyExact({ message: fcmMessage(token, content) })
  const accessToken = await fcmAccessToken(credentials)
  const base = (ctx.config.env.FCM_API_BASE || defaultApiBase).replace(/\/+$/, '')
  const res = await sendHttp({
    url: `${base}/v1/projects/${encodeURIComponent(credentials.projectId)}/messages:send`,
    method: 'POST',
    headers: {
      authorization: `Bearer ${accessToken}`,
      'content-type': 'application/json; charset=utf-8',
      'user-agent': 'pg-observers',
      [deliveryIdHeader]: ctx.delivery.delivery_id,
    },
    body,
    signal: ctx.signal,
  })
  assertFcmOk(res)
  return {
    status: res.status,
    detail: { provider: 'fcm', message_name: parseReply<{ name: string }>(res.body).name },
  }
}
