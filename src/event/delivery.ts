import type { ActionConfig, FailurePolicy, RetryPolicy } from '../observers/types.ts'
import type { ChangeEvent } from './event.ts'

/** One failed attempt, kept on the job so a dead letter shows its whole history. */
export interface AttemptRecord {
  attempt: number
  at: string
  code: string
  error: string
  status?: number
  duration_ms: number
}

/** W3C trace context (https://www.w3.org/TR/trace-context/) as carried in a job. */
export interface TraceContext {
  traceparent: string
  tracestate?: string
}

/**
 * The payload of one queued job: one (event, observer, action). It holds a snapshot of the
 * action config with `*_env` references unresolved, so no secret is ever written to a job row.
 */
export interface Delivery {
  delivery_id: string
  observer: string
  action_index: number
  action: ActionConfig
  retry: RetryPolicy
  on_failure: FailurePolicy
  event: ChangeEvent
  attempts?: AttemptRecord[]
  /** The job's send span when traces are exported (docs/operations.md, Tracing). */
  trace?: TraceContext
}

/** What the matcher decided: a delivery, its job id, and the row key when its observer orders by entity. */
export interface MatchedDelivery {
  jobId: string | undefined
  delivery: Delivery
  /** Set for `ordering: entity`: deliveries of one key run one at a time, in commit order. */
  orderingKey: string | undefined
}
