import type { createClient, ErrorReply } from 'redis'
import { ActionError, coerceError } from '../errors/errors.ts'
import type { Logger } from '../log/log.ts'
import { lazyModule } from '../runtime/lazy.ts'
import { safeUrl } from './http.ts'

const redis = lazyModule<typeof import('redis')>('redis')

export type RedisClient = ReturnType<typeof createClient>

const connectTimeoutMs = 5_000
/** Redis errors that say "not now" rather than "never". */
const transientReplies = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|OOM|READONLY|NOREPLICAS)\b/

export function isTransientReply(reply: ErrorReply): boolean {
  return transientReplies.test(reply.message)
}
const maxReconnectDelayMs = 2_000

/** One client per REDIS_URL for the whole process, created on first use. */
const clients = new Map<string, Promise<RedisClient>>()

/**
 * The shared client for `url`, connecting it on first use. A first connection that fails is
 * forgotten, so the next attempt dials again; once connected, the client reconnects on its own
 * with a capped backoff while commands fail fast (no offline queue), as transient errors.
 */
export function redisClient(url: string, log: Logger): Promise<RedisClient> {
  const existing = clients.get(url)
  if (existing) return existing
  const client = connectRedis(url, log)
  clients.set(url, client)
  client.catch(() => {
    if (clients.get(url) === client) clients.delete(url)
  })
  return client
}

async function connectRedis(url: string, log: Logger): Promise<RedisClient> {
  const where = safeUrl(url)
  let everReady = false
  let down = false
  const client: RedisClient = redis().createClient({
    url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: connectTimeoutMs,
      reconnectStrategy: (retries, cause) =>
        everReady ? Math.min(50 * 2 ** retries, maxReconnectDelayMs) : cause,
    },
  })
  // Errors surface through the commands that hit them; the log gets one line per outage.
  client.on('error', (err: unknown) => {
    if (!everReady || down) return
    down = true
    log.warn(
      { redis: where, error: coerceError(err).message },
      `redis ${where} connection lost; reconnecting`,
    )
  })
  client.on('ready', () => {
    everReady = true
    if (down) log.info({ redis: where }, `redis ${where} reconnected`)
    down = false
  })
  try {
    await client.connect()
  } catch (err) {
    throw connectFailure(err, where)
  }
  return client
}

/** A refusal by the server (WRONGPASS, NOPERM) will recur; a network failure may not. */
function connectFailure(err: unknown, where: string): ActionError {
  const e = coerceError(err instanceof redis().ReconnectStrategyError ? err.socketError : err)
  if (e instanceof redis().ErrorReply) {
    return new ActionError(`redis ${where} refused the connection: ${e.message}`, {
      retryable: isTransientReply(e),
      cause: err,
    })
  }
  return new ActionError(`redis ${where} unreachable: ${e.message}`, { retryable: true, cause: err })
}

/** Closes every Redis client (pending commands finish first). */
export async function closeRedisClients(): Promise<void> {
  const pending = [...clients.values()]
  clients.clear()
  await Promise.all(
    pending.map(async (p) => {
      const client = await p.catch(() => undefined)
      if (client?.isOpen) await client.close().catch(() => client.destroy())
    }),
  )
}

/** The library's reply error class, for telling a command Redis refused from a lost connection. */
export function redisErrorReply(): typeof ErrorReply {
  return redis().ErrorReply
}
