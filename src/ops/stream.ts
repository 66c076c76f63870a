import type { IncomingMessage, ServerResponse } from 'node:http'
import { HttpError, RequestCode } from '../errors/errors.ts'
import { normaliseEntity } from '../observers/load.ts'
import type { ExecutionFeed, StreamEvent } from '../report/feed.ts'

const eventAliases: Record<string, string> = { CREATED: 'INSERT', UPDATED: 'UPDATE', DELETED: 'DELETE' }

function matcher(url: URL): (e: StreamEvent) => boolean {
  const entity = url.searchParams.get('entity')
  const rawEvent = url.searchParams.get('event')?.toUpperCase()
  const want = {
    entity: entity ? normaliseEntity(entity) : undefined,
    event: rawEvent ? (eventAliases[rawEvent] ?? rawEvent) : undefined,
    observer: url.searchParams.get('observer') ?? undefined,
    outcome: url.searchParams.get('outcome') ?? undefined,
  }
  return (e) =>
    (want.entity === undefined || e.entity === want.entity) &&
    (want.event === undefined || e.event === want.event) &&
    (want.observer === undefined || e.observer === want.observer) &&
    (want.outcome === undefined || e.outcome === want.outcome)
}

// A client that stops reading is dropped rather than buffered without bound; it can resume.
const maxBufferedBytes = 1024 * 1024
const fullRetryAfterSeconds = 10

export interface StreamOptions {
  heartbeatMs: number
  maxClients: number
}

/**
 * The replay owed to a client that reconnects with Last-Event-ID: the events it missed, or a
 * `gap` event when they are gone.
 */
function resumeFrames(feed: ExecutionFeed, lastEventId: string, accepts: (e: StreamEvent) => boolean) {
  const missed = feed.since(lastEventId)
  if (typeof missed !== 'string') return missed.filter(accepts).map((e) => e.frame)
  const data = JSON.stringify({ last_event_id: lastEventId, reason: missed })
  return [`event: gap\ndata: ${data}\n\n`]
}

/** Server-sent events: `event: execution` per matching report, a comment line as heartbeat. */
export function serveStream(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  feed: ExecutionFeed,
  opts: StreamOptions,
): void {
  if (feed.subscribers >= opts.maxClients) {
    res.setHeader('retry-after', String(fullRetryAfterSeconds))
    throw new HttpError(
      503,
      RequestCode.StreamFull,
      `/api/stream has ${feed.subscribers} client(s), its limit (OBSERVERS_STREAM_MAX_CLIENTS=${opts.maxClients}); try again later`,
    )
  }
  const accepts = matcher(url)
  const lastEventId = req.headers['last-event-id'] ?? url.searchParams.get('last_event_id')
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  })
  const send = (text: string) => {
    if (res.destroyed) return
    if (res.writableLength > maxBufferedBytes) res.destroy()
    else res.write(text)
  }
  res.write(': connected\n\n')
  // The replay is bounded by the feed's capacity, so it is written whole, never cut as slow.
  if (typeof lastEventId === 'string' && lastEventId !== '') {
    for (const frame of resumeFrames(feed, lastEventId, accepts)) res.write(frame)
  }
  // An id line without data moves the client's position without an event (the SSE spec), so
  // a client whose filter matched nothing lately still resumes from here, not from a stale id.
  const position = () => `id: ${feed.head}\n\n`
  send(position())
  const unsubscribe = feed.subscribe((e) => {
    if (accepts(e)) send(e.frame)
  })
  const heartbeat = setInterval(() => send(`: heartbeat\n${position()}`), opts.heartbeatMs)
  const cleanup = () => {
    clearInterval(heartbeat)
    unsubscribe()
  }
  req.on('close', cleanup)
  res.on('close', cleanup)
}
