import type { NodemailerError, SendMailOptions, Transporter } from 'nodemailer'
import { ActionError, coerceError, ErrorCode } from '../errors/errors.ts'
import { maskUrlCredentials } from '../log/log.ts'
import { lazyModule } from '../runtime/lazy.ts'

const nodemailer = lazyModule<typeof import('nodemailer')>('nodemailer')

/** One pooled transporter per SMTP_URL, so connections (and their TLS and AUTH) are reused. */
const transporters = new Map<string, Transporter>()

function transporterFor(url: string): Transporter {
  let transporter = transporters.get(url)
  if (transporter) return transporter
  const invalid = (why: string, cause?: unknown) =>
    new ActionError(`SMTP_URL ${why}`, { retryable: false, code: ErrorCode.InvalidActionConfig, cause })
  if (!/^smtps?:\/\/[^/]/i.test(url)) throw invalid('must be an smtp:// or smtps:// URL')
  try {
    // The URL's own parameters (requireTLS, maxConnections, tls.*, ...) win over pool: true.
    transporter = nodemailer().createTransport({ url, pool: true })
  } catch (err) {
    throw invalid(`is not usable: ${maskUrlCredentials(coerceError(err).message)}`, err)
  }
  transporters.set(url, transporter)
  return transporter
}

// Errors without an SMTP reply that the same message would meet again.
const permanentCodes = new Set([
  'EENVELOPE',
  'ENOAUTH',
  'ECONFIG',
  'EREQUIRETLS',
  'EMAXRECIPIENTS',
  'EFILEACCESS',
  'EURLACCESS',
])

/**
 * SMTP replies decide: 4xx is transient and 5xx permanent (except 503, a session-state reply
 * that a fresh connection clears, as nodemailer's `permanent` flag says). Errors with no reply
 * (connection refused or dropped, timeouts, TLS) are transient.
 */
export function smtpError(err: unknown): ActionError {
  const e = coerceError(err) as NodemailerError
  const reply = e.responseCode
  const permanent =
    reply === undefined
      ? permanentCodes.has(e.code ?? '')
      : (e.permanent ?? (reply >= 500 && reply < 600 && reply !== 503))
  return new ActionError(`SMTP ${reply ?? e.code ?? 'error'}: ${maskUrlCredentials(e.message)}`, {
    retryable: !permanent,
    ...(reply === undefined ? {} : { status: reply }),
    cause: err,
  })
}

/** A recipient the server refused at RCPT TO, with its reply code. */
export interface RefusedRecipient {
  recipient: string
  code: number | undefined
}

export interface SentMail {
  messageId: string
  accepted: number
  rejected: number
  refused: RefusedRecipient[]
}

export async function sendMail(url: string, message: SendMailOptions): Promise<SentMail> {
  const transporter = transporterFor(url)
  try {
    const info = await transporter.sendMail(message)
    return {
      messageId: info.messageId,
      accepted: info.accepted?.length ?? 0,
      rejected: info.rejected?.length ?? 0,
      refused: ((info.rejectedErrors ?? []) as Array<{ recipient?: unknown; responseCode?: number }>).map(
        (e) => ({
          recipient: String(e.recipient ?? ''),
          code: e.responseCode,
        }),
      ),
    }
  } catch (err) {
    throw smtpError(err)
  }
}

/** Ends every pooled SMTP connection (with QUIT); for the worker's stop, after in-flight sends. */
export function closeSmtpTransports(): void {
  for (const transporter of transporters.values()) transporter.close()
  transporters.clear()
}
