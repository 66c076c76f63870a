import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'

export interface ReceivedMail {
  /** The credentials the client authenticated with. */
  auth: { username: string; password: string }
  envelope: { from: string; to: string[] }
  /** Whether the session ran over TLS. */
  tls: boolean
  raw: string
  /** Lower-cased header names, values unfolded and decoded. */
  headers: Map<string, string>
  text: string | undefined
  html: string | undefined
}

/** SMTP reply to the end of DATA: 250 accepts, 4xx/5xx rejects with that code. */
export type SmtpReply = number

export interface SmtpServer {
  port: number
  /** TCP connections accepted so far. */
  connections(): number
  /** smtp://user:pass@127.0.0.1:port, with the credentials this server accepts. */
  url: string
  /** Every message that reached the end of DATA, accepted or not. */
  attempts: ReceivedMail[]
  /** Accepted messages only. */
  accepted: ReceivedMail[]
  reply(script: SmtpReply[] | ((mail: ReceivedMail) => SmtpReply)): void
  /** RCPT TO replies: a 4xx/5xx code refuses that recipient, undefined accepts it. */
  refuseRecipients(refuse: (address: string) => SmtpReply | undefined): void
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMail[]>
  close(): Promise<void>
}

/**
 * A real SMTP server in process, with AUTH PLAIN/LOGIN. STARTTLS is off so plain smtp:// stays
 * plain; `secure` makes it implicit TLS (smtps://) with smtp-server's built-in self-signed certificate.
 */
export async function startSmtp(opts: {
  username: string
  password: string
  secure?: boolean
}): Promise<SmtpServer> {
  let connections = 0
  const attempts: ReceivedMail[] = []
  const accepted: ReceivedMail[] = []
  let script: SmtpReply[] | ((mail: ReceivedMail) => SmtpReply) = [250]
  let served = 0
  let refuse: (address: string) => SmtpReply | undefined = () => undefined
  const server = new SMTPServer({
    secure: opts.secure ?? false,
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    closeTimeout: 200,
    logger: false,
    onConnect(_session, done) {
      connections++
      done()
    },
    onAuth(auth, _session, done) {
      if (auth.username === opts.username && auth.password === opts.password) {
        return done(null, { user: { username: auth.username, password: auth.password ?? '' } })
      }
      return done(new Error('Invalid username or password'))
    },
    onRcptTo(address, _session, done) {
      const code = refuse(address.address)
      if (code === undefined) return done()
      const text = code < 500 ? 'mailbox busy, try later' : 'no such mailbox'
      return done(Object.assign(new Error(text), { responseCode: code }))
    },
    onData(stream, session, done) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8')
        const mail: ReceivedMail = {
          auth: session.user as ReceivedMail['auth'],
          envelope: {
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
          },
          tls: session.secure,
          raw,
          ...parseMessage(raw),
        }
        attempts.push(mail)
        const code =
          typeof script === 'function' ? script(mail) : (script[Math.min(served, script.length - 1)] ?? 250)
        served++
        if (code < 400) {
          accepted.push(mail)
          return done()
        }
        const err = Object.assign(new Error(code < 500 ? 'try again later' : 'message rejected'), {
          responseCode: code,
        })
        return done(err)
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.server.address() as AddressInfo
  const user = encodeURIComponent(opts.username)
  const pass = encodeURIComponent(opts.password)
  return {
    port,
    connections: () => connections,
    url: `${opts.secure ? 'smtps' : 'smtp'}://${user}:${pass}@127.0.0.1:${port}`,
    attempts,
    accepted,
    reply(next) {
      script = next
      served = 0
    },
    refuseRecipients(next) {
      refuse = next
    },
    async waitFor(count, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs
      while (attempts.length < count) {
        if (Date.now() > deadline) throw new Error(`SMTP got ${attempts.length} of ${count} messages`)
        await new Promise((r) => setTimeout(r, 25))
      }
      return attempts
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** Headers, text and html of a MIME message: enough of RFC 2045/2047 for what nodemailer writes. */
export function parseMessage(raw: string): Pick<ReceivedMail, 'headers' | 'text' | 'html'> {
  const found: { text?: string; html?: string } = {}
  const headers = walkPart(raw, found)
  return { headers, text: found.text, html: found.html }
}

function splitPart(raw: string): { headers: Map<string, string>; body: string } {
  const at = raw.indexOf('\r\n\r\n')
  const head = at < 0 ? raw : raw.slice(0, at)
  const body = at < 0 ? '' : raw.slice(at + 4)
  const headers = new Map<string, string>()
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':')
    if (colon > 0)
      headers.set(line.slice(0, colon).trim().toLowerCase(), decodeWords(line.slice(colon + 1).trim()))
  }
  return { headers, body }
}

function walkPart(raw: string, found: { text?: string; html?: string }): Map<string, string> {
  const { headers, body } = splitPart(raw)
  const type = headers.get('content-type') ?? 'text/plain'
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1]
  if (type.startsWith('multipart/') && boundary) {
    const parts = body.split(`--${boundary}`).slice(1, -1)
    for (const part of parts) walkPart(part.replace(/^\r\n/, ''), found)
  } else {
    const decoded = decodeBody(body, headers.get('content-transfer-encoding') ?? '7bit')
    if (type.startsWith('text/html')) found.html = decoded
    else if (type.startsWith('text/plain')) found.text = decoded
  }
  return headers
}

function decodeBody(body: string, encoding: string): string {
  const enc = encoding.toLowerCase()
  if (enc === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8')
  if (enc === 'quoted-printable') return decodeQuotedPrintable(body.replace(/=\r\n/g, ''))
  return body.replace(/\r\n$/, '')
}

function decodeQuotedPrintable(text: string): string {
  const bytes: number[] = []
  for (let i = 0; i < text.length; i++) {
    const hex = text.slice(i + 1, i + 3)
    if (text[i] === '=' && /^[0-9A-F]{2}$/i.test(hex)) {
      bytes.push(Number.parseInt(hex, 16))
      i += 2
    } else {
      bytes.push(...Buffer.from(text[i] ?? '', 'utf8'))
    }
  }
  return Buffer.from(bytes).toString('utf8').replace(/\r\n$/, '')
}

/** RFC 2047 encoded words (=?UTF-8?B?…?= and =?UTF-8?Q?…?=). */
function decodeWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([BQ])\?([^?]*)\?=/gi, (_m, _charset: string, kind: string, text: string) =>
      kind.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : decodeQuotedPrintable(text.replace(/_/g, ' ')),
    )
}
