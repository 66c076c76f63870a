import { randomBytes } from 'node:crypto'
import type { ExecutionReport } from '../execute/execute.ts'
import { stringifyExact } from '../json/exact.ts'

/**
 * One execution as /api/stream sends it. The frame is serialized once at publish time and the
 * same string is written to every subscriber, so a stream client costs a write, not a render.
 */
export interface StreamEvent {
  /** `<feed>.<seq>`: the feed part names this process's feed, seq counts up from 1. */
  readonly id: string
  readonly frame: string
  readonly entity: string
  readonly event: string
  readonly observer: string
  readonly outcome: ExecutionReport['outcome']
}

/** Why a Last-Event-ID cannot be resumed from. */
export type ResumeGap = 'expired' | 'unknown'

/** Fans every execution report of this process out to the open /api/stream connections. */
export interface ExecutionFeed {
  publish(report: ExecutionReport): void
  subscribe(listener: (event: StreamEvent) => void): () => void
  /** The events after `lastEventId`, oldest first, or why they cannot be replayed. */
  since(lastEventId: string): StreamEvent[] | ResumeGap
  /** The id of the latest event (`<feed>.0` before the first). */
  readonly head: string
  readonly subscribers: number
}

/** Events kept for clients that reconnect with Last-Event-ID (docs/api.md). */
export const replayCapacity = 1000

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

export function createExecutionFeed(capacity = replayCapacity): ExecutionFeed {
  // Ids of another process (a restarted worker, a sibling behind a balancer) must not resume here.
  const feedId = randomBytes(4).toString('hex')
  const listeners = new Set<(event: StreamEvent) => void>()
  const recent: StreamEvent[] = []
  let seq = 0
  return {
    publish(report) {
      seq++
      const id = `${feedId}.${seq}`
      const event: StreamEvent = {
        id,
        frame: `id: ${id}\nevent: execution\ndata: ${stringifyExact(executionMessage(report))}\n\n`,
        entity: report.delivery.event.entity,
        event: report.delivery.event.event,
        observer: report.delivery.observer,
        outcome: report.outcome,
      }
      recent[seq % capacity] = event
      for (const l of listeners) l(event)
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    since(lastEventId) {
      const m = /^([0-9a-f]+)\.(\d{1,15})$/.exec(lastEventId.trim())
      const after = Number(m?.[2])
      if (m?.[1] !== feedId || after > seq) return 'unknown'
      if (seq - after > capacity) return 'expired'
      const missed: StreamEvent[] = []
      for (let n = after + 1; n <= seq; n++) missed.push(recent[n % capacity] as StreamEvent)
      return missed
    },
    get head() {
      return `${feedId}.${seq}`
    },
    get subscribers() {
      return listeners.size
    },
  }
}
