import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Config } from '../config/config.ts'
import { HttpError, RequestCode } from '../errors/errors.ts'
import type { Logger } from '../log/log.ts'
import {
  createBackfillRoute,
  listBackfillsRoute,
  resumeBackfill,
  showBackfill,
  stopBackfill,
} from './api-backfills.ts'
import { listDeliveryRecord } from './api-deliveries.ts'
import { deleteDlq, listDlq, purgeMatchingDlq, retryManyDlq, retryOneDlq, showDlq } from './api-dlq.ts'
import { fireObserver } from './api-fire.ts'
import { showObserver } from './api-observer.ts'
import { closeBreaker, listObservers, reloadObservers, setPaused } from './api-observers.ts'
import { replay } from './api-replay.ts'
import { authorized } from './auth.ts'
import { sendError, sendJson, statusOf } from './http.ts'
import { serveOpenApi } from './openapi.ts'
import { readiness } from './readiness.ts'
import { csrfHeader, csrfValid } from './sessions.ts'
import { serveStream } from './stream.ts'
import type { ConsoleState, OpsTarget, RouteContext } from './types.ts'
import { handleUi } from './ui.ts'

interface Route {
  method: string
  path: RegExp
  handle(ctx: RouteContext): Promise<void> | void
}

const id = '([^/]+)'

const routes: Route[] = [
  { method: 'GET', path: /^\/healthz$/, handle: ({ res }) => sendJson(res, 200, { status: 'ok' }) },
  {
    method: 'GET',
    path: /^\/readyz$/,
    async handle({ res, worker, config }) {
      const r = await readiness(worker, config)
      sendJson(res, r.ready ? 200 : 503, r)
    },
  },
  {
    method: 'GET',
    path: /^\/metrics$/,
    async handle({ res, worker }) {
      const text = await worker.telemetry.metrics.scrape()
      res.writeHead(200, { 'content-type': worker.telemetry.metrics.registry.contentType })
      res.end(text)
    },
  },
  { method: 'GET', path: /^\/api\/openapi\.json$/, handle: serveOpenApi },
  { method: 'GET', path: /^\/api\/observers$/, handle: listObservers },
  { method: 'POST', path: /^\/api\/observers\/reload$/, handle: reloadObservers },
  { method: 'GET', path: new RegExp(`^/api/observers/${id}$`), handle: showObserver },
  { method: 'POST', path: new RegExp(`^/api/observers/${id}/fire$`), handle: fireObserver },
  { method: 'POST', path: new RegExp(`^/api/observers/${id}/pause$`), handle: setPaused(true) },
  { method: 'POST', path: new RegExp(`^/api/observers/${id}/resume$`), handle: setPaused(false) },
  { method: 'POST', path: new RegExp(`^/api/breakers/${id}/close$`), handle: closeBreaker },
  { method: 'GET', path: /^\/api\/deliveries$/, handle: listDeliveryRecord },
  { method: 'POST', path: /^\/api\/replay$/, handle: replay },
  { method: 'GET', path: /^\/api\/backfills$/, handle: listBackfillsRoute },
  { method: 'POST', path: /^\/api\/backfills$/, handle: createBackfillRoute },
  { method: 'GET', path: new RegExp(`^/api/backfills/${id}$`), handle: showBackfill },
  { method: 'POST', path: new RegExp(`^/api/backfills/${id}/stop$`), handle: stopBackfill },
  { method: 'POST', path: new RegExp(`^/api/backfills/${id}/resume$`), handle: resumeBackfill },
  { method: 'GET', path: /^\/api\/dlq$/, handle: listDlq },
  {
    method: 'GET',
    path: /^\/api\/backlog$/,
    handle: async ({ res, console: c }) =>
      sendJson(res, 200, { interval_seconds: c.history.intervalSeconds, samples: await c.history.samples() }),
  },
  { method: 'POST', path: /^\/api\/dlq\/retry$/, handle: retryManyDlq },
  { method: 'POST', path: /^\/api\/dlq\/purge$/, handle: purgeMatchingDlq },
  { method: 'GET', path: new RegExp(`^/api/dlq/${id}$`), handle: showDlq },
  { method: 'POST', path: new RegExp(`^/api/dlq/${id}/retry$`), handle: retryOneDlq },
  { method: 'DELETE', path: new RegExp(`^/api/dlq/${id}$`), handle: deleteDlq },
  {
    method: 'GET',
    path: /^\/api\/stream$/,
    handle: ({ req, res, url, worker, config }) =>
      serveStream(req, res, url, worker.telemetry.feed, {
        heartbeatMs: config.sseHeartbeatMs,
        maxClients: config.streamMaxClients,
      }),
  },
]

/** Method and path pattern of every route, for the check that openapi.json describes them all. */
export const routeTable: ReadonlyArray<{ method: string; path: RegExp }> = routes.map(({ method, path }) => ({
  method,
  path,
}))

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

function find(method: string, pathname: string): { route: Route; params: string[] } | HttpError {
  let pathMatched = false
  for (const route of routes) {
    const m = route.path.exec(pathname)
    if (!m) continue
    pathMatched = true
    if (route.method === method || (method === 'HEAD' && route.method === 'GET')) {
      return { route, params: m.slice(1).map(safeDecode) }
    }
  }
  return pathMatched
    ? new HttpError(405, RequestCode.MethodNotAllowed, `${method} is not allowed on ${pathname}`)
    : new HttpError(404, RequestCode.NotFound, `no route ${method} ${pathname}`)
}

/**
 * /api needs the bearer token when one is configured, or the console's session cookie; a
 * state-changing request with the cookie must also carry the page's CSRF token in a header.
 */
function assertApiAccess(req: IncomingMessage, res: ServerResponse, deps: Deps): void {
  if (authorized(req, deps.config.apiToken)) return
  const session = deps.console.sessions.of(req)
  if (!session) {
    res.setHeader('www-authenticate', 'Bearer realm="pg-observers"')
    throw new HttpError(
      401,
      RequestCode.Unauthorized,
      'missing or invalid bearer token (OBSERVERS_API_TOKEN)',
    )
  }
  const safe = req.method === 'GET' || req.method === 'HEAD'
  if (!safe && !csrfValid(req, session))
    throw new HttpError(403, RequestCode.Forbidden, `missing or invalid ${csrfHeader} header`)
}

type Deps = { worker: OpsTarget; config: Config; log: Logger; console: ConsoleState }

/** Routes one request: /ui to the console, /api behind the token or a console session. */
export async function handleRequest(req: IncomingMessage, res: ServerResponse, deps: Deps): Promise<void> {
  try {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname === '/ui' || url.pathname.startsWith('/ui/')) {
      await handleUi({ req, res, url, params: [], ...deps })
      return
    }
    if (url.pathname.startsWith('/api/')) assertApiAccess(req, res, deps)
    const found = find(req.method ?? 'GET', url.pathname)
    if (found instanceof HttpError) throw found
    await found.route.handle({ req, res, url, params: found.params, ...deps })
  } catch (err) {
    // An HttpError is an answer we chose (503 stream_full under a flood): not worth a log line each.
    if (statusOf(err) >= 500 && !(err instanceof HttpError)) {
      deps.log.error({ err, method: req.method, path: req.url?.split('?')[0] }, 'ops request failed')
    }
    sendError(res, err)
  }
}
