import { ActionError } from '../errors/errors.ts'
import type { ActionConfig } from '../observers/types.ts'
import { renderString } from '../templates/render.ts'
import { missingEnv, requireEnv } from './env.ts'
import {
  deliveryIdHeader,
  excerpt,
  type HttpResponse,
  isTransientStatus,
  parseRetryAfter,
  sendHttp,
} from './http.ts'
import { parseReply } from './reply.ts'
import type { ActionType } from './types.ts'

export interface SmsAction extends ActionConfig {
  type: 'sms'
  phone: string
  from?: string
  message_template: string
}

const defaultApiBase = 'https://api.twilio.com'
const e164 = /^\+[1-9]\d{1,14}$/
const messagingServiceSid = /^MG[0-9a-f]{32}$/i
/** Twilio's own code for "too many requests", sometimes sent with a status other than 429. */
const twilioRateLimited = 20429

/** The rendered number in E.164; spaces, dashes, dots and parentheses are dropped first. */
export function e164Phone(rendered: string): string {
  const phone = rendered.replace(/[\s\-.()]/g, '')
  if (!e164.test(phone)) {
    throw new ActionError(
      `phone "${rendered.trim()}" is not an E.164 number (+ and 2 to 15 digits); nothing sent`,
      {
        retryable: false,
      },
    )
  }
  return phone
}

interface TwilioError {
  code: number
  message: string
}

/** Twilio answers 201 with the message; errors carry a numeric `code` (21211 invalid To, ...). */
function assertTwilioOk(res: HttpResponse): void {
  if (res.status >= 200 && res.status < 300) return
  const err = parseReply<TwilioError>(res.body)
  const retryAfterMs = parseRetryAfter(res.headers['retry-after'])
  const code = typeof err.code === 'number' ? ` (error ${err.code})` : ''
  throw new ActionError(`twilio answered ${res.status}${code}: ${err.message ?? excerpt(res.body)}`, {
    retryable: isTransientStatus(res.status) || err.code === twilioRateLimited,
    status: res.status,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  })
}

export const sms: ActionType<SmsAction> = {
  type: 'sms',
  defaultTimeoutMs: 10_000,
  missingTransport: (action, config) =>
    missingEnv(config, ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', action.from ? undefined : 'TWILIO_FROM']),
  templates: (action) => [action.phone, action.from, action.message_template],
  destination: () => 'twilio',
  async execute(action, ctx) {
    const sid = requireEnv(ctx.config, 'TWILIO_ACCOUNT_SID', 'sms')
    const token = requireEnv(ctx.config, 'TWILIO_AUTH_TOKEN', 'sms')
    const from = action.from
      ? renderString(action.from, ctx.scope).trim()
      : requireEnv(ctx.config, 'TWILIO_FROM', 'sms')
    const form = new URLSearchParams({
      To: e164Phone(renderString(action.phone, ctx.scope)),
      Body: renderString(action.message_template, ctx.scope),
    })
    form.set(messagingServiceSid.test(from) ? 'MessagingServiceSid' : 'From', from)
    const base = (ctx.config.env.TWILIO_API_BASE || defaultApiBase).replace(/\/+$/, '')
    const res = await sendHttp({
      url: `${base}/2010-04-01/Accounts/${encodeURIComponent(sid)}/Messages.json`,
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${sid}:${token}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        'user-agent': 'pg-observers',
        [deliveryIdHeader]: ctx.delivery.delivery_id,
      },
      body: form.toString(),
      signal: ctx.signal,
    })
    assertTwilioOk(res)
    const message = parseReply<{ sid: string; status: string }>(res.body)
    return { status: res.status, detail: { sid: message.sid, message_status: message.status } }
  },
}
