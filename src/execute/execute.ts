import { actionTypes } from '../actions/registry.ts'
import type { ActionType } from '../actions/types.ts'
import type { Config } from '../config/config.ts'
import {
  ActionError,
  AppError,
  coerceError,
  describeError,
  ErrorCode,
  TemplateError,
} from '../errors/errors.ts'
import type { AttemptRecord, Delivery } from '../event/delivery.ts'
import { type Logger, scrubSecrets } from '../log/log.ts'
import type { ClaimedJob, Outcome } from '../queue/boss.ts'
import { actionTimeoutMs } from '../queue/policy.ts'
import { templateScope } from '../templates/render.ts'
import { retryDelayMs } from './backoff.ts'

export interface ExecutionReport {
  delivery: Delivery
  attempt: number
  durationMs: number
  outcome: 'success' | 'retry' | 'failed'
  code?: string
  error?: string
}

export interface ExecuteDeps {
  config: Config
  log: Logger
  /** Told about every attempt's outcome (metrics, live stream). */
  onReport?: (report: ExecutionReport) => void
}

interface Classified {
  retryable: boolean
  code: string
  message: string
  status?: number
  retryAfterMs?: number
}

function classify(err: Error): Classified {
  if (err instanceof ActionError) {
    return {
      retryable: err.retryable,
      code: err.code,
      message: describeError(err),
      ...(err.status === undefined ? {} : { status: err.status }),
      ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
    }
  }
  // Template and configuration errors will fail the same way next time.
  if (err instanceof TemplateError || err instanceof AppError)
    return { retryable: false, code: err.code, message: describeError(err) }
  return {
    retryable: true,
    code: ErrorCode.ActionFailedTransient,
    message: `${ErrorCode.ActionFailedTransient}: ${err.message}`,
  }
}

/**
 * The action's signal: aborted by its time limit or by the job's own signal (shutdown). The
 * timer and the listener go when the attempt ends: a timer left to fire after every delivery
 * kept each attempt's closures alive for its whole time limit and made an error when it fired.
 */
function attemptSignal(ms: number, parent: AbortSignal): { signal: AbortSignal; done(): void } {
  const ctl = new AbortController()
  const timer = setTimeout(
    () =>
      ctl.abort(
        new ActionError(`action timed out after ${ms} ms`, {
          retryable: true,
          code: ErrorCode.ActionTimedOut,
        }),
      ),
    ms,
  )
  const onParent = () => ctl.abort(parent.reason)
  parent.addEventListener('abort', onParent, { once: true })
  return {
    signal: ctl.signal,
    done() {
      clearTimeout(timer)
      parent.removeEventListener('abort', onParent)
    },
  }
}

async function runAction(type: ActionType, job: ClaimedJob, deps: ExecuteDeps) {
  const { delivery } = job
  const timeoutMs = actionTimeoutMs(delivery.action)
  const { signal, done } = attemptSignal(timeoutMs, job.signal)
  const ctx = {
    config: deps.config,
    log: deps.log,
    delivery,
    attempt: job.attempt,
    signal,
    timeoutMs,
    scope: templateScope(delivery, job.attempt),
  }
  // An action that ignores its signal still cannot outlive its time limit.
  const aborted = new Promise<never>((_, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason), { once: true })
  })
  try {
    return await Promise.race([type.execute(delivery.action, ctx), aborted])
  } finally {
    done()
  }
}

function retryAfter(c: Classified): { retryAfterMs?: number } {
  return c.retryAfterMs === undefined ? {} : { retryAfterMs: c.retryAfterMs }
}

/** Executes one delivery attempt and decides its fate: done, retry later, or failed for good. */
export async function executeDelivery(job: ClaimedJob, deps: ExecuteDeps): Promise<Outcome> {
  const { delivery, attempt } = job
  const started = performance.now()
  const base = {
    observer: delivery.observer,
    action: delivery.action_index,
    type: delivery.action.type,
    delivery_id: delivery.delivery_id,
    attempt,
  }
  const type = actionTypes.get(delivery.action.type)
  try {
    if (!type)
      throw new AppError(ErrorCode.UnsupportedActionType, `unsupported action type "${delivery.action.type}"`)
    const result = await runAction(type, job, deps)
    const durationMs = Math.round(performance.now() - started)
    deps.log.info(
      { ...base, duration_ms: durationMs, outcome: 'success', status: result.status },
      'action succeeded',
    )
    deps.onReport?.({ delivery, attempt, durationMs, outcome: 'success' })
    return {
      kind: 'completed',
      output: { status: result.status ?? null, duration_ms: durationMs, ...result.detail },
    }
  } catch (e) {
    const c = classify(coerceError(e))
    // A receiver may echo a secret back in its error body; job and DLQ rows must not keep it.
    c.message = scrubSecrets(c.message)
    const durationMs = Math.round(performance.now() - started)
    const record: AttemptRecord = {
      attempt,
      at: new Date().toISOString(),
      code: c.code,
      error: c.message,
      duration_ms: durationMs,
      ...(c.status === undefined ? {} : { status: c.status }),
    }
    if (job.signal.aborted) {
      // Shutdown cut the attempt short: no verdict on the delivery, so it goes back to the queue.
      deps.log.warn({ ...base, duration_ms: durationMs, outcome: 'requeued', error: c.message }, c.message)
      return { kind: 'requeue', record }
    }
    const policy = delivery.retry
    if (c.retryable && attempt < policy.max_attempts) {
      const delayMs = retryDelayMs(policy, attempt, c.retryAfterMs)
      deps.log.warn(
        {
          ...base,
          duration_ms: durationMs,
          outcome: 'retry',
          code: c.code,
          status: c.status,
          retry_in_ms: delayMs,
          error: c.message,
        },
        c.message,
      )
      deps.onReport?.({ delivery, attempt, durationMs, outcome: 'retry', code: c.code, error: c.message })
      return { kind: 'retry', delayMs, record, ...retryAfter(c) }
    }
    const code = c.retryable ? ErrorCode.RetriesExhausted : c.code
    const message = c.retryable
      ? `${ErrorCode.RetriesExhausted}: gave up after ${attempt} attempts; last error: ${c.message}`
      : c.message
    const fields = {
      ...base,
      duration_ms: durationMs,
      outcome: 'failed',
      code,
      status: c.status,
      on_failure: delivery.on_failure,
      error: message,
    }
    if (delivery.on_failure === 'alert') deps.log.error({ ...fields, alert: true }, `ALERT ${message}`)
    else deps.log.error(fields, message)
    deps.onReport?.({ delivery, attempt, durationMs, outcome: 'failed', code, error: message })
    return {
      kind: 'failed',
      record: { ...record, code, error: message },
      deadLetter: delivery.on_failure !== 'log',
      ...retryAfter(c),
    }
  }
}
