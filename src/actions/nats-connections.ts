import type { NatsConnection } from '@nats-io/transport-node'
import { ActionError, coerceError, ErrorCode } from '../errors/errors.ts'
import type { Logger } from '../log/log.ts'
import { lazyModule } from '../runtime/lazy.ts'
import { safeUrl } from './http.ts'

const natsCore = lazyModule<typeof import('@nats-io/transport-node')>('@nats-io/transport-node')

const connectTimeoutMs = 5_000
const reconnectWaitMs = 1_000

/** One connection per NATS_URL for the whole process, created on first use. */
const connections = new Map<string, Promise<NatsConnection>>()

export interface NatsServerOptions {
  servers: string[]
  user?: string
  pass?: string
  token?: string
}

/** Splits NATS_URL (one or more comma-separated servers) into servers and credentials. */
export function natsOptions(natsUrl: string): NatsServerOptions {
  const servers: string[] = []
  let user: string | undefined
  let pass: string | undefined
  for (const part of natsUrl.split(',').map((s) => s.trim())) {
    if (!URL.canParse(part)) {
      throw new ActionError(`NATS_URL holds an invalid server URL "${safeUrl(part)}"`, {
        retryable: false,
        code: ErrorCode.InvalidActionConfig,
      })
    }
    const u = new URL(part)
    if (u.username) {
      user = decodeURIComponent(u.username)
      pass = u.password ? decodeURIComponent(u.password) : undefined
    }
    servers.push(`${u.protocol}//${u.host}`)
  }
  if (user === undefined) return { servers }
  // A user without a password is how NATS URLs carry a token.
  return pass === undefined ? { servers, token: user } : { servers, user, pass }
}

/**
 * The shared connection for `natsUrl`. A first connection that fails is a transient error and
 * is forgotten, so the next attempt dials again; once connected, the client reconnects forever
 * and buffers publishes meanwhile (each attempt still waits for the server within its time limit).
 */
export function natsConnection(natsUrl: string, log: Logger): Promise<NatsConnection> {
  const existing = connections.get(natsUrl)
  if (existing) return existing
  const nc = connectNats(natsUrl, log)
  connections.set(natsUrl, nc)
  const forget = () => {
    if (connections.get(natsUrl) === nc) connections.delete(natsUrl)
  }
  // A connection that fails, or that is closed for good later, is replaced on next use.
  nc.then((c) => c.closed().then(forget), forget)
  return nc
}

async function connectNats(natsUrl: string, log: Logger): Promise<NatsConnection> {
  const options = natsOptions(natsUrl)
  const where = options.servers.join(',')
  let nc: NatsConnection
  try {
    nc = await natsCore().connect({
      ...options,
      name: 'pg-observers',
      timeout: connectTimeoutMs,
      maxReconnectAttempts: -1,
      reconnectTimeWait: reconnectWaitMs,
    })
  } catch (err) {
    throw new ActionError(`nats ${where} unreachable: ${coerceError(err).message}`, {
      retryable: true,
      cause: err,
    })
  }
  void watchStatus(nc, where, log)
  return nc
}

async function watchStatus(nc: NatsConnection, where: string, log: Logger): Promise<void> {
  for await (const s of nc.status()) {
    if (s.type === 'disconnect') log.warn({ nats: where }, `nats ${where} connection lost; reconnecting`)
    else if (s.type === 'reconnect') log.info({ nats: where }, `nats ${where} reconnected`)
  }
}

/** Drains every NATS connection: buffered publishes are flushed before it closes. */
export async function drainNatsConnections(): Promise<void> {
  const pending = [...connections.values()]
  connections.clear()
  await Promise.all(
    pending.map(async (p) => {
      const nc = await p.catch(() => undefined)
      if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close())
    }),
  )
}
