import { actionTypes } from '../actions/registry.ts'
import type { MatchedDelivery } from '../event/delivery.ts'
import type { ActionConfig } from '../observers/types.ts'
import { type QueuedDelivery, queueName } from './boss.ts'

/** The time limit of an action type this build does not know (its deliveries fail with OB011). */
const unknownTypeTimeoutMs = 10_000

/**
 * A worker that dies mid-attempt hands the job back once its expiry passes: the attempt's own
 * limit plus this margin, so a live attempt always ends (and settles) first.
 */
const expiryMarginSeconds = 5

/** One attempt's time limit: the action's `timeout_ms`, else its type's default. */
export function actionTimeoutMs(action: ActionConfig): number {
  return action.timeout_ms ?? actionTypes.get(action.type)?.defaultTimeoutMs ?? unknownTypeTimeoutMs
}

/** How long pg-boss lets an attempt run before it hands the job to another worker. */
export function jobExpirySeconds(action: ActionConfig): number {
  return Math.ceil(actionTimeoutMs(action) / 1000) + expiryMarginSeconds
}

/** Names an action's destination within its type (a webhook's host, an env variable). */
export function destinationName(action: ActionConfig): string {
  return actionTypes.get(action.type)?.destination?.(action) ?? 'default'
}

/** The destination max_concurrency groups and circuit breakers are keyed on. */
export function destinationKey(action: ActionConfig): string {
  return `${action.type}:${destinationName(action)}`
}

/**
 * The job a matched delivery becomes: strict-FIFO per row for ordered observers, grouped per
 * destination for actions with max_concurrency, plain otherwise.
 */
export function jobOf(m: MatchedDelivery): QueuedDelivery {
  const { action } = m.delivery
  const limit = action.max_concurrency
  const variant = m.orderingKey !== undefined ? 'ordered' : limit === undefined ? 'plain' : 'limited'
  return {
    jobId: m.jobId,
    queue: queueName(action.type, variant),
    key: m.orderingKey,
    group: limit === undefined ? undefined : { id: destinationKey(action), limit },
    expireInSeconds: jobExpirySeconds(action),
    delivery: m.delivery,
  }
}
