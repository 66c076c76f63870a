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

/** Recorded in the delivery record's `output` (observers.deliveries) and in the outcome log line. */
export interface ActionResult {
  status?: number
  detail?: Record<string, unknown>
}

/** The HTTP request an attempt sends: what the console shows beside a failure. */
export interface HttpRequestPlan {
  method: string
  url: string
  /** How to show the URL when it is a secret (`url_env`): its origin only. */
  label: string
  urlIsSecret: boolean
  headers: Record<string, string>
  /** Lower-case names of headers whose value is a secret (`headers_env`, signatures). */
  secretHeaders: string[]
  body: string
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
  /** The request `execute` would send, for HTTP actions; throws as `execute` would on bad input. */
  request?(action: A, ctx: ActionContext): HttpRequestPlan
  execute(action: A, ctx: ActionContext): Promise<ActionResult>
}
