import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { isIPv4 } from 'node:net'
import type { Config } from '../config/config.ts'
import { ConfigError, ErrorCode } from '../errors/errors.ts'

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`: reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h
  return isIPv4(v4) && v4.startsWith('127.')
}

/** Refuses to expose the API beyond this machine without a token (OB001). */
export function assertSafeBinding(config: Config): void {
  if (config.apiToken || isLoopback(config.host)) return
  throw new ConfigError(
    ErrorCode.InvalidConfig,
    `HOST=${config.host} exposes the ops API beyond loopback: set OBSERVERS_API_TOKEN, or bind HOST=127.0.0.1`,
  )
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/**
 * True when the request may use /api: no token configured (then the server is loopback-only),
 * or `Authorization: Bearer <token>` matches. Both sides are hashed first so the comparison
 * takes the same time whatever the length or content of the guess.
 */
export function authorized(req: IncomingMessage, token: string | undefined): boolean {
  if (!token) return true
  const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')
  if (!m?.[1]) return false
  return tokenMatches(m[1].trim(), token)
}

/** Constant-time comparison of a presented token with the configured one. */
export function tokenMatches(given: string, token: string): boolean {
  return timingSafeEqual(digest(given), digest(token))
}
