import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Config } from '../config.ts'
import type { Logger } from '../log.ts'
import type { Worker } from '../worker.ts'

export interface OpsServer {
  readonly port: number
  close(): Promise<void>
}

export interface Readiness {
  ready: boolean
  checks: Record<string, { ok: boolean; detail?: string }>
}

/** Ready when the database answers, the listener is connected and the observers loaded cleanly. */
export async function readiness(worker: Worker): Promise<Readiness> {
  const checks: Readiness['checks'] = {}
  try {
    await worker.pool.query('select 1')
    checks.database = { ok: true }
  } catch (err) {
    checks.database = { ok: false, detail: (err as Error).message }
  }
  checks.listener = worker.dispatcher.listener.connected
    ? { ok: true }
    : { ok: false, detail: 'listener connection is down' }
  const problems = worker.current().problems
  checks.observers =
    problems.length === 0
      ? { ok: true }
      : { ok: false, detail: `${problems.length} observer problem(s): ${problems[0]?.message}` }
  return { ready: Object.values(checks).every((c) => c.ok), checks }
}

function json(res: http.ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

export async function startOpsServer(worker: Worker, config: Config, log: Logger): Promise<OpsServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (req.method === 'GET' && url.pathname === '/healthz') return json(res, 200, { status: 'ok' })
    if (req.method === 'GET' && url.pathname === '/readyz') {
      readiness(worker).then(
        (r) => json(res, r.ready ? 200 : 503, r),
        (err: Error) => json(res, 503, { ready: false, error: err.message }),
      )
      return
    }
    json(res, 404, { error: 'not found' })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.port, config.host, resolve)
  })
  const port = (server.address() as AddressInfo).port
  log.info({ port, host: config.host }, `ops HTTP on http://${config.host}:${port}`)
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
