import addressparser from 'nodemailer/lib/addressparser'
import { ActionError, ErrorCode, TemplateError } from '../errors/errors.ts'
import type { ActionConfig } from '../observers/types.ts'
import { renderString } from '../templates/render.ts'
import { missingEnv, requireEnv } from './env.ts'
import { type RefusedRecipient, sendMail } from './smtp.ts'
import type { ActionContext, ActionType } from './types.ts'

/** One recipient, as parsed from a rendered address field. */
interface Mailbox {
  name: string
  address: string
}

/** One template, or a JSON array of them (one address each): several fixed addresses. */
export type AddressField = string | string[]

export interface EmailAction extends ActionConfig {
  type: 'email'
  to: AddressField
  cc?: AddressField
  bcc?: AddressField
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

/**
 * How many addresses a template's own text holds: each `{{ output }}` counts as one address and
 * tags as none. A row value may fill an address, never add one.
 */
function templateAddressCount(source: string): number {
  const skeleton = source.replace(/\{\{[\s\S]*?\}\}/g, 'x@x.invalid').replace(/\{%[\s\S]*?%\}/g, '')
  return addressparser(skeleton, { flatten: true }).length
}

const mailbox = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+$/

/**
 * The rendered addresses of `to`, `cc` or `bcc`, parsed here so what is checked is what is
 * sent: a rendering that yields more addresses than its template holds (a row value carrying
 * `a@x, b@y` or `a@x;b@y`), or something that is not an address, fails with OB008.
 */
function addresses(field: AddressField | undefined, what: string, ctx: ActionContext): Mailbox[] {
  const sources = field === undefined ? [] : Array.isArray(field) ? field : [field]
  return sources.flatMap((source) => {
    const rendered = renderString(source, ctx.scope)
    if (/[\r\n]/.test(rendered)) throw new TemplateError(`"${what}" rendered a line break`)
    const found = addressparser(rendered, { flatten: true })
    const allowed = templateAddressCount(source)
    if (found.length > allowed) {
      throw new TemplateError(
        `"${what}" rendered ${found.length} addresses where its template holds ${allowed}: a value fills one address, it cannot add recipients (list fixed addresses as a JSON array)`,
      )
    }
    for (const a of found) {
      if (!mailbox.test(a.address ?? ''))
        throw new TemplateError(`"${what}" rendered "${excerpt(rendered)}", which is not an e-mail address`)
    }
    return found.map((a) => ({ name: a.name ?? '', address: a.address ?? '' }))
  })
}

function excerpt(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}…` : text
}

/**
 * Refused primary recipients fail the delivery even when a copy went out: a 4xx refusal may
 * clear (transient), a 5xx one will not (permanent). Refused cc/bcc recipients are recorded only.
 */
function assertPrimaryAccepted(to: Mailbox[], refused: RefusedRecipient[]): void {
  const primary = new Set(to.map((a) => a.address.toLowerCase()))
  const missed = refused.filter((r) => primary.has(r.recipient.toLowerCase()))
  if (missed.length === 0) return
  const transient = missed.some((r) => r.code !== undefined && r.code < 500)
  const list = missed.map((r) => `${r.recipient} (${r.code ?? 'refused'})`).join(', ')
  throw new ActionError(`SMTP refused the recipient(s) in "to": ${list}`, {
    retryable: transient,
    ...(missed[0]?.code === undefined ? {} : { status: missed[0].code }),
  })
}

/** The same delivery always gets the same Message-ID, so a retried send can be recognised. */
function messageId(deliveryId: string, from: string): string {
  const domain = /@([^\s<>@]+)>?\s*$/.exec(from)?.[1] ?? 'pg-observers.invalid'
  return `<${deliveryId}@${domain}>`
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]: V })
}

function nonEmpty(list: Mailbox[]): Mailbox[] | undefined {
  return list.length === 0 ? undefined : list
}

export const email: ActionType<EmailAction> = {
  type: 'email',
  defaultTimeoutMs: 30_000,
  missingTransport: (action, config) =>
    missingEnv(config, [action.from ? undefined : 'SMTP_FROM', 'SMTP_URL']),
  templates: (action) => [
    ...[action.to, action.cc, action.bcc].flat(),
    action.from,
    action.subject,
    action.body_template,
    action.html_template,
  ],
  destination: () => 'smtp',
  async execute(action, ctx) {
    const from = sender(action, ctx)
    const url = requireEnv(ctx.config, 'SMTP_URL', 'email')
    const to = addresses(action.to, 'to', ctx)
    if (to.length === 0)
      throw new ActionError('"to" rendered empty: no recipient, nothing sent', { retryable: false })
    const sent = await sendMail(url, {
      from,
      to,
      ...optional('cc', nonEmpty(addresses(action.cc, 'cc', ctx))),
      ...optional('bcc', nonEmpty(addresses(action.bcc, 'bcc', ctx))),
      subject: renderString(action.subject, ctx.scope),
      ...optional('text', action.body_template && renderString(action.body_template, ctx.scope)),
      ...optional('html', action.html_template && renderString(action.html_template, ctx.scope)),
      messageId: messageId(ctx.delivery.delivery_id, from),
      headers: { 'X-Observers-Delivery-Id': ctx.delivery.delivery_id },
      signal: ctx.signal,
    })
    assertPrimaryAccepted(to, sent.refused)
    const refused = sent.refused.map((r) => ({ recipient: r.recipient, code: r.code ?? null }))
    return {
      detail: {
        message_id: sent.messageId,
        accepted: sent.accepted,
        rejected: sent.rejected,
        ...(refused.length === 0 ? {} : { refused }),
      },
    }
  },
}
