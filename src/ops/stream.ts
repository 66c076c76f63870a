import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ExecutionReport } from '../execute/execute.ts'
import { stringifyExact } from '../json/exact.ts'
import { normaliseEntity } from '../observers/load.ts'

/** Fans every execution report of this process out to the open /api/stream connections. */
export interface ExecutionFeed {
  publish(report: ExecutionReport): void
  subscribe(listener: (report: ExecutionReport) => void): () => void
  readonly subscribers: number
}

export function createExecutionFeed(): ExecutionFeed {
  const listeners = new Set<(report: ExecutionReport) => void>()
  return {
    publish(report) {
      for (const l of listeners) l(report)
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    get subscribers() {
      return listeners.size
    },
  }
}

/** What a stream client receives per execution: no row images, they may be large or private. */
export function executionMessage(r: ExecutionReport) {
  const e = r.delivery.event
  return {
    delivery_id: r.delivery.delivery_id,
    observer: r.delivery.observer,
    action_index: r.delivery.action_index,
    type: r.delivery.action.type,
    attempt: r.attempt,
    outcome: r.outcome,
    duration_ms: r.durationMs,
    ...(r.code === undefined ? {} : { code: r.code }),
    ...(r.error === undefined ? {} : { error: r.error }),
    at: new Date().toISOString(),
    event: { id: e.id, seq: e.seq, event: e.event, entity: e.entity, entity_id: e.entity_id },
  }
}

const eventAliases: Record<string, string> = { CREATED: 'INSERT', UPDATED: 'UPDATE', DELETED: 'DELETE' }

function matcher(url: URL): (r: ExecutionReport) => boolean {
  const entity = url.searchParams.get('entity')
  const rawEvent = url.searchParams.get('event')?.toUpperCase()
  const want = {
    entity: entity ? normaliseEntity(entity) : undefined,
    event: rawEvent ? (eventAliases[rawEvent] ?? rawEvent) : undefined,
    observer: url.searchParams.get('observer') ?? undefined,
    outcome: url.searchParams.get('outcome') ?? undefined,
  }
  return (r) =>
    (want.entity === undefined || r.delivery.event.entity === want.entity) &&
    (want.event === undefined || r.delivery.event.event === want.event) &&
    (want.observer === undefined || r.delivery.observer === want.observer) &&
    (want.outcome === undefined || r.outcome === want.outcome)
}

// A client that stops reading is dropped rather than buffered without bound.
const maxBufferedBytes = 1024 * 1024

/** Server-sent events: `event: execution` per matching report, a comment line as heartbeat. */
export function serveStream(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  feed: ExecutionFeed,
  heartbeatMs: number,
): void {
  const accepts = matcher(url)
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  })
  res.write(': connected\n\n')
  let id = 0
  const send = (text: string) => {
    if (res.writableLength > maxBufferedBytes) res.destroy()
    else res.write(text)
  }
  const unsubscribe = feed.subscribe((r) => {
    if (!accepts(r)) return
    id++
    send(`id: ${id}\nevent: execution\ndata: ${stringifyExact(executionMessage(r))}\n\n`)
  })
  const heartbeat = setInterval(() => send(': heartbeat\n\n'), heartbeatMs)
  const cleanup = () => {
    clearInterval(heartbeat)
    unsubscribe()
  }
  req.on('close', cleanup)
  res.on('close', cleanup)
}
