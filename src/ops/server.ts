import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Config } from '../config/config.ts'
import type { Logger } from '../log/log.ts'
import { startBacklogHistory } from './backlog-history.ts'
import { handleRequest } from './routes.ts'
import { createSessions } from './sessions.ts'
import type { OpsTarget } from './types.ts'

export type { Readiness } from './readiness.ts'
export { readiness } from './readiness.ts'

export interface OpsServer {
  readonly port: number
  close(): Promise<void>
}

const keepAliveTimeoutMs = 5000
const dropWarningIntervalMs = 60_000

/**
 * Bounds what clients can hold: connections past the cap are closed as they arrive, and a
 * client that is slow to send its request is answered 408 and closed, so the ops port can never
 * take the file descriptors and memory deliveries need (docs/api.md, Limits).
 */
function limitConnections(server: http.Server, config: Config, log: Logger): void {
  server.maxConnections = config.httpMaxConnections
  let dropped = 0
  let warnedAt = Number.NEGATIVE_INFINITY
  server.on('drop', () => {
    dropped++
    const now = performance.now()
    if (now - warnedAt < dropWarningIntervalMs) return
    log.warn(
      { dropped, max_connections: config.httpMaxConnections },
      'ops HTTP at its connection limit (OBSERVERS_HTTP_MAX_CONNECTIONS): new connections are closed',
    )
    warnedAt = now
    dropped = 0
  })
}

/**
 * node:http on PORT/HOST: a dozen routes, JSON and one SSE stream need no framework, and
 * keeping the dependency list short keeps the worker's attack surface small (docs/api.md).
 */
export async function startOpsServer(worker: OpsTarget, config: Config, log: Logger): Promise<OpsServer> {
  const state = { sessions: createSessions(), history: startBacklogHistory(worker.pool) }
  const server = http.createServer(
    {
      headersTimeout: config.httpHeadersTimeoutMs,
      requestTimeout: config.httpRequestTimeoutMs,
      keepAliveTimeout: keepAliveTimeoutMs,
      // Node checks both timeouts on this interval (30 s by default), which would stretch them.
      connectionsCheckingInterval: Math.min(1000, Math.ceil(config.httpHeadersTimeoutMs / 4)),
    },
    (req, res) => {
      void handleRequest(req, res, { worker, config, log, console: state })
    },
  )
  limitConnections(server, config, log)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.port, config.host, resolve)
  }).catch((err: unknown) => {
    state.history.stop()
    throw err
  })
  const port = (server.address() as AddressInfo).port
  log.info(
    { port, host: config.host, api_token: config.apiToken ? 'required' : 'not set (loopback only)' },
    `ops HTTP on http://${config.host}:${port}`,
  )
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        state.history.stop()
        server.close(() => resolve())
        // Stream clients never hang up on their own.
        server.closeAllConnections()
      }),
  }
}
