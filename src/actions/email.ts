import { ActionError, ErrorCode } from '../errors.ts'
import type { ActionConfig } from '../observers/types.ts'
import { renderString } from '../templates/render.ts'
import { missingEnv, requireEnv } from './env.ts'
import { sendMail } from './smtp.ts'
import type { ActionContext, ActionType } from './types.ts'

export interface EmailAction extends ActionConfig {
  type: 'email'
  to: string
  cc?: string
  bcc?: string
  from?: string
  subject: string
  body_template?: string
  html_template?: string
}

function sender(action: EmailAction, ctx: ActionContext): string {
  const from = action.from ? renderString(action.from, ctx.scope).trim() : ctx.config.env.SMTP_FROM
  if (!from) {
    throw new ActionError('no sender: set "from" on the action or the SMTP_FROM environment variable', {
      retryable: false,
      code: ErrorCode.InvalidActionConfig,
    })
  }
  return from
}

/** A comma-separated address list, rendered; nodemailer parses it (quoted names may hold commas). */
function addresses(template: string | undefined, ctx: ActionContext): string | undefined {
  if (template === undefined) return undefined
  const list = renderString(template, ctx.scope)
    .trim()
    .replace(/^,+|,+$/g, '')
  return list === '' ? undefined : list
}

/** The same delivery always gets the same Message-ID, so a retried send can be recognised. */
function messageId(deliveryId: string, from: string): string {
  const domain = /@([^\s<>@]+)>?\s*$/.exec(from)?.[1] ?? 'pg-observers.invalid'
  return `<${deliveryId}@${domain}>`
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]: string })
}

export const email: ActionType<EmailAction> = {
  type: 'email',
  defaultTimeoutMs: 30_000,
  missingTransport: (action, config) =>
    missingEnv(config, [action.from ? undefined : 'SMTP_FROM', 'SMTP_URL']),
  templates: (action) => [
    action.to,
    action.cc,
    action.bcc,
    action.from,
    action.subject,
    action.body_template,
    action.html_template,
  ],
  destination: () => 'smtp',
  async execute(action, ctx) {
    const from = sender(action, ctx)
    const url = requireEnv(ctx.config, 'SMTP_URL', 'email')
    const to = addresses(action.to, ctx)
    if (to === undefined)
      throw new ActionError('"to" rendered empty: no recipient, nothing sent', { retryable: false })
    const sent = await sendMail(url, {
      from,
      to,
      ...optional('cc', addresses(action.cc, ctx)),
      ...optional('bcc', addresses(action.bcc, ctx)),
      subject: renderString(action.subject, ctx.scope),
      ...optional('text', action.body_template && renderString(action.body_template, ctx.scope)),
      ...optional('html', action.html_template && renderString(action.html_template, ctx.scope)),
      messageId: messageId(ctx.delivery.delivery_id, from),
      signal: ctx.signal,
    })
    return { detail: { message_id: sent.messageId, accepted: sent.accepted, rejected: sent.rejected } }
  },
}
