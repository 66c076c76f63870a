import { AsyncLocalStorage } from 'node:async_hooks'
import {
  type Context,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api'
import type { Matcher } from '../dispatch/match.ts'
import type { TraceContext } from '../event/delivery.ts'
import type { ChangeEvent } from '../event/event.ts'
import type { ClaimedJob, Outcome, QueuedDelivery } from '../queue/boss.ts'

/**
 * Spans of a change's journey: dispatch (one per change, child of the committing transaction's
 * traceparent) → send (one per job; its context travels in the job data) → process (one per
 * attempt) → the outgoing HTTP request. Only built when an OTLP endpoint is configured
 * (src/ops/otlp.ts); otherwise nothing here runs and the SDK is never loaded.
 */
export interface Tracing {
  matcher(inner: Matcher): Matcher
  onDispatched(events: readonly ChangeEvent[]): void
  attempt(job: ClaimedJob, run: () => Promise<Outcome>): Promise<Outcome>
  shutdown(): Promise<void>
}

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** The remote parent a W3C traceparent (and tracestate) names, as a context to start spans in. */
export function remoteContext(parent: TraceContext | string | null | undefined): Context {
  const tp = typeof parent === 'string' ? parent : parent?.traceparent
  const m = tp ? traceparentPattern.exec(tp) : null
  if (!m?.[1] || !m[2] || !m[3] || /^0+$/.test(m[1]) || /^0+$/.test(m[2])) return ROOT_CONTEXT
  const spanContext: SpanContext = {
    traceId: m[1],
    spanId: m[2],
    traceFlags: Number.parseInt(m[3], 16) & 1,
    isRemote: true,
  }
  return trace.setSpanContext(ROOT_CONTEXT, spanContext)
}

/** W3C trace context of a span, as it is sent on the wire and stored in a job. */
export function traceContextOf(span: Span): TraceContext {
  const c = span.spanContext()
  const flags = c.traceFlags.toString(16).padStart(2, '0')
  const state = c.traceState?.serialize()
  return { traceparent: `00-${c.traceId}-${c.spanId}-${flags}`, ...(state ? { tracestate: state } : {}) }
}

/** The span of the attempt running in this async context, for the HTTP helper to parent on. */
const currentAttempt = new AsyncLocalStorage<{ tracer: Tracer; span: Span }>()

export interface HttpSpan {
  headers: TraceContext
  end(status: number | undefined, error?: Error): void
}

/** A client span for an outgoing request inside a traced attempt; undefined outside of one. */
export function startHttpSpan(method: string, url: string, label: string): HttpSpan | undefined {
  const attempt = currentAttempt.getStore()
  if (!attempt) return undefined
  let host: { address: string; port: number } | undefined
  try {
    const u = new URL(url)
    host = { address: u.hostname, port: Number(u.port) || (u.protocol === 'https:' ? 443 : 80) }
  } catch {
    host = undefined
  }
  const span = attempt.tracer.startSpan(
    method,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'http.request.method': method,
        'url.full': label,
        ...(host ? { 'server.address': host.address, 'server.port': host.port } : {}),
      },
    },
    trace.setSpan(ROOT_CONTEXT, attempt.span),
  )
  return {
    headers: traceContextOf(span),
    end(status, error) {
      if (status !== undefined) span.setAttribute('http.response.status_code', status)
      if (error) {
        span.setAttribute('error.type', error.name)
        span.setStatus({ code: SpanStatusCode.ERROR, message: error.message })
      } else if (status !== undefined && status >= 400) {
        span.setAttribute('error.type', String(status))
        span.setStatus({ code: SpanStatusCode.ERROR })
      }
      span.end()
    },
  }
}

const messagingSystem = 'pg-boss'

/** Builds the spans on `tracer`; `shutdown` flushes and stops the exporter. */
export function createTracing(tracer: Tracer, shutdown: () => Promise<void>): Tracing {
  const open = new WeakMap<ChangeEvent, Span[]>()
  const wrapped = new WeakMap<Matcher, Matcher>()

  const traced =
    (inner: Matcher): Matcher =>
    (event, source) => {
      const dispatch = tracer.startSpan(
        `dispatch ${event.entity}`,
        {
          kind: SpanKind.INTERNAL,
          attributes: {
            'observers.change.id': event.id,
            'observers.change.seq': event.seq,
            'observers.change.event': event.event,
            'observers.change.entity': event.entity,
            'observers.change.entity_id': event.entity_id,
            ...(source ? { 'observers.source': source } : {}),
          },
        },
        remoteContext(event.traceparent),
      )
      const parent = trace.setSpan(ROOT_CONTEXT, dispatch)
      const spans = [dispatch]
      const jobs = inner(event, source).map((job): QueuedDelivery => {
        const send = tracer.startSpan(
          `send ${job.queue}`,
          {
            kind: SpanKind.PRODUCER,
            attributes: {
              'messaging.system': messagingSystem,
              'messaging.operation.type': 'send',
              'messaging.operation.name': 'send',
              'messaging.destination.name': job.queue,
              ...(job.jobId ? { 'messaging.message.id': job.jobId } : {}),
              'observers.observer': job.delivery.observer,
              'observers.action.index': job.delivery.action_index,
              'observers.action.type': job.delivery.action.type,
              'observers.delivery_id': job.delivery.delivery_id,
            },
          },
          parent,
        )
        spans.push(send)
        return { ...job, delivery: { ...job.delivery, trace: traceContextOf(send) } }
      })
      dispatch.setAttribute('messaging.batch.message_count', jobs.length)
      open.set(event, spans)
      return jobs
    }

  return {
    matcher(inner) {
      let m = wrapped.get(inner)
      if (!m) {
        m = traced(inner)
        wrapped.set(inner, m)
      }
      return m
    },
    // Spans of a pass that rolled back are never ended: they are never exported.
    onDispatched(events) {
      for (const e of events) {
        for (const span of open.get(e)?.reverse() ?? []) span.end()
        open.delete(e)
      }
    },
    async attempt(job, run) {
      const { delivery } = job
      const span = tracer.startSpan(
        `process ${job.queue}`,
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            'messaging.system': messagingSystem,
            'messaging.operation.type': 'process',
            'messaging.operation.name': 'process',
            'messaging.destination.name': job.queue,
            'messaging.message.id': job.id,
            'observers.observer': delivery.observer,
            'observers.action.index': delivery.action_index,
            'observers.action.type': delivery.action.type,
            'observers.delivery_id': delivery.delivery_id,
            'observers.attempt': job.attempt,
          },
        },
        remoteContext(delivery.trace ?? delivery.event.traceparent),
      )
      try {
        const outcome = await currentAttempt.run({ tracer, span }, run)
        span.setAttribute('observers.outcome', outcome.kind)
        if (outcome.kind !== 'completed') {
          span.setAttribute('error.type', outcome.record.code)
          span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.record.error })
        }
        return outcome
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) })
        throw err
      } finally {
        span.end()
      }
    },
    shutdown,
  }
}
