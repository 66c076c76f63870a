import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/** A console sign-in: the cookie names it, the page holds its CSRF token. */
export interface Session {
  readonly id: string
  readonly csrf: string
  readonly expiresAt: number
}

export const sessionCookie = 'observers_session'
export const csrfHeader = 'x-observers-csrf'
const ttlMs = 12 * 3600_000
/** Sign-ins need the token, so this only bounds memory should someone sign in in a loop. */
const maxSessions = 1000

export interface Sessions {
  create(): Session
  /** The live session the request's cookie names, if any. */
  of(req: IncomingMessage): Session | undefined
  end(id: string): void
}

function cookieValue(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

/** Sessions held in this process's memory: a restart or another worker means signing in again. */
export function createSessions(now = () => Date.now()): Sessions {
  const live = new Map<string, Session>()
  return {
    create() {
      for (const [id, s] of live) if (s.expiresAt <= now() || live.size >= maxSessions) live.delete(id)
      const session = {
        id: randomBytes(32).toString('base64url'),
        csrf: randomBytes(32).toString('base64url'),
        expiresAt: now() + ttlMs,
      }
      live.set(session.id, session)
      return session
    },
    of(req) {
      const id = cookieValue(req, sessionCookie)
      const s = id ? live.get(id) : undefined
      if (!s) return undefined
      if (s.expiresAt > now()) return s
      live.delete(s.id)
      return undefined
    },
    end: (id) => void live.delete(id),
  }
}

export function sessionCookieHeader(session: Session | undefined): string {
  const attrs = 'Path=/; HttpOnly; SameSite=Strict'
  return session
    ? `${sessionCookie}=${session.id}; ${attrs}; Max-Age=${Math.floor(ttlMs / 1000)}`
    : `${sessionCookie}=; ${attrs}; Max-Age=0`
}

/** A state-changing request made with the cookie must also carry the page's CSRF token. */
export function csrfValid(req: IncomingMessage, session: Session): boolean {
  const given = req.headers[csrfHeader]
  if (typeof given !== 'string') return false
  const a = Buffer.from(given)
  const b = Buffer.from(session.csrf)
  return a.length === b.length && timingSafeEqual(a, b)
}
