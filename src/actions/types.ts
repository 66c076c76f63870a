import type { Config } from '../config/config.ts'
import type { Delivery } from '../event/delivery.ts'
import type { Logger } from '../log/log.ts'
import type { ActionConfig } from '../observers/types.ts'

/** What an action gets besides its own config. */
export interface ActionContext {
  readonly config: Config
  readonly log: Logger
  readonly delivery: Delivery
  readonly attempt: number
  /** Aborts on timeout_ms and on shutdown. */
  readonly signal: AbortSignal
  /** This attempt's time limit (src/queue/policy.ts resolves it), which `signal` enforces. */
  readonly timeoutMs: number
  /** The Liquid scope for this delivery (event, row columns, observer, delivery_id, attempt). */
  readonly scope: Record<string, unknown>
}

/** Recorded on the completed job and in the outcome log line. */
export interface ActionResult {
  status?: number
  detail?: Record<string, unknown>
}

/**
 * One action type. Every file in src/actions/ exports one of these; `execute` throws
 * ActionError (retryable or not) or TemplateError, and never decides about retries itself.
 */
export interface ActionType<A extends ActionConfig = ActionConfig> {
  readonly type: string
  /** Default per-attempt time limit. */
  readonly defaultTimeoutMs: number
  /** Names of missing transport settings (env vars) for this action, checked at startup. */
  missingTransport(action: A, config: Config): string[]
  /** Template sources to check at load time (strings and JSON templates). */
  templates(action: A): unknown[]
  /** A key naming the destination, so max_concurrency can be applied per destination. */
  destination?(action: A): string
  execute(action: A, ctx: ActionContext): Promise<ActionResult>
}
