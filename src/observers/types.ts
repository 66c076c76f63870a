import type { CompiledCondition } from '../conditions/index.ts'
import type { EventKind } from '../event/event.ts'

export const BackoffStrategies = ['exponential', 'linear', 'fixed'] as const
export type BackoffStrategy = (typeof BackoffStrategies)[number]

export interface RetryPolicy {
  max_attempts: number
  initial_delay_ms: number
  max_delay_ms: number
  backoff_strategy: BackoffStrategy
}

export const FailurePolicies = ['dlq', 'log', 'alert'] as const
export type FailurePolicy = (typeof FailurePolicies)[number]

/** An action as written in the observer file: `*_env` references stay unresolved until execution. */
export interface ActionConfig {
  type: string
  timeout_ms?: number
  retry?: Partial<RetryPolicy>
  max_concurrency?: number
  rate_limit?: RateLimit
  [option: string]: unknown
}

/** Deliveries let go per second or per minute, cluster-wide, to a destination or a templated key. */
export interface RateLimit {
  per_second?: number
  per_minute?: number
  /** Liquid template naming the bucket instead of the destination (e.g. `{{ tenant_id }}`). */
  key?: string
}

/** The source an observer reads when it names none: our own observers.change_log. */
export const ownSource = 'changelog'

/** A validated observer, ready to match events. */
export interface Observer {
  name: string
  file: string
  /** Where its changes come from (docs/sources.md); `entity` is only normalised for ownSource. */
  source: string
  entity: string
  events: ReadonlySet<EventKind>
  columns: readonly string[] | undefined
  condition: CompiledCondition | undefined
  actions: readonly ActionConfig[]
  retry: RetryPolicy
  onFailure: FailurePolicy
  ordering: 'none' | 'entity'
  noopUpdates: boolean
  tenantColumn: string | undefined
}

export const defaultRetry: RetryPolicy = {
  max_attempts: 5,
  initial_delay_ms: 1000,
  max_delay_ms: 300_000,
  backoff_strategy: 'exponential',
}
