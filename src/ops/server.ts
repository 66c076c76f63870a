import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Config } from '../config.ts'
import type { Logger } from '../log.ts'
import type { Worker } from '../worker.ts'
import { handleRequest } from './routes.ts'

export type { Readiness } from './readiness.ts'
export { readiness } from './readiness.ts'

export interface OpsServer {
  readonly port: number
  close(): Promise<void>
}

/**
 * node:http on PORT/HOST: a dozen routes, JSON and one SSE stream need no framework, and
 * keeping the dependency list short keeps the worker's attack surface small (docs/api.md).
 */
export async function startOpsServer(worker: Worker, config: Config, log: Logger): Promise<OpsServer> {
  const server = http.createServer((req, res) => {
    void handleRequest(req, res, { worker, config, log })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.port, config.host, resolve)
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
        server.close(() => resolve())
        // Stream clients never hang up on their own.
        server.closeAllConnections()
      }),
  }
}
