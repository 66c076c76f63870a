import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node'
import { ActionError, coerceError, TemplateError } from '../errors/errors.ts'
import { stringifyExact } from '../json/exact.ts'
import type { ActionConfig } from '../observers/types.ts'
import { lazyModule } from '../runtime/lazy.ts'
import { renderJson, renderString } from '../templates/render.ts'
import { missingEnv, requireEnv } from './env.ts'
import { natsConnection } from './nats-connections.ts'
import type { ActionContext, ActionResult, ActionType } from './types.ts'

const natsCore = lazyModule<typeof import('@nats-io/transport-node')>('@nats-io/transport-node')
const natsJetStream = lazyModule<typeof import('@nats-io/jetstream')>('@nats-io/jetstream')

export interface NatsAction extends ActionConfig {
  type: 'nats'
  subject: string
  message_template?: string | Record<string, unknown> | unknown[]
  jetstream?: boolean
}

const defaultTimeoutMs = 5_000

/** A subject one can publish to: dot-separated non-empty tokens, no whitespace, no wildcards. */
export function isPublishSubject(subject: string): boolean {
  if (subject === '' || /\s/.test(subject)) return false
  return subject.split('.').every((token) => token !== '' && token !== '*' && token !== '>')
}

function renderMessage(action: NatsAction, ctx: ActionContext): string {
  const tpl = action.message_template
  if (tpl === undefined) return stringifyExact(ctx.delivery.event)
  if (typeof tpl === 'string') return renderString(tpl, ctx.scope)
  return stringifyExact(renderJson(tpl, ctx.scope))
}

function renderSubject(action: NatsAction, ctx: ActionContext): string {
  const subject = renderString(action.subject, ctx.scope)
  if (isPublishSubject(subject)) return subject
  throw new ActionError(
    `invalid NATS subject "${subject}": tokens are separated by dots, may not be empty, hold whitespace or be the wildcards * or >`,
    { retryable: false },
  )
}

/** Rejects with the signal's reason when it aborts first: NATS requests take no AbortSignal. */
function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

async function publishCore(
  nc: NatsConnection,
  subject: string,
  data: string,
  hdrs: MsgHdrs,
  ctx: ActionContext,
) {
  // Streams that capture this subject dedupe core publishes by this header too.
  hdrs.set('Nats-Msg-Id', ctx.delivery.delivery_id)
  nc.publish(subject, data, { headers: hdrs })
  // The server has the message once it answers the PING that flush sends after it.
  await raceSignal(nc.flush(), ctx.signal)
  return { detail: { subject, jetstream: false } }
}

async function publishJetStream(
  nc: NatsConnection,
  subject: string,
  data: string,
  hdrs: MsgHdrs,
  ctx: ActionContext,
): Promise<ActionResult> {
  const timeout = ctx.timeoutMs
  const ack = await raceSignal(
    natsJetStream()
      .jetstream(nc)
      .publish(subject, data, { msgID: ctx.delivery.delivery_id, headers: hdrs, timeout }),
    ctx.signal,
  )
  return {
    detail: { subject, jetstream: true, stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate },
  }
}

/** JetStream answers a publish only when a stream captures the subject. */
function isNoResponders(e: Error): boolean {
  const request = e instanceof natsCore().RequestError ? e : e.cause
  return request instanceof natsCore().RequestError && request.isNoResponders()
}

function natsFailure(err: unknown, subject: string, signal: AbortSignal): Error {
  if (signal.aborted && signal.reason instanceof Error) return signal.reason
  const e = coerceError(err)
  if (e instanceof ActionError || e instanceof TemplateError) return e
  if (isNoResponders(e)) {
    return new ActionError(
      `no JetStream stream captures subject "${subject}" (503 no responders): create a stream for it or set "jetstream": false`,
      { retryable: false, status: 503, cause: err },
    )
  }
  if (e instanceof natsJetStream().JetStreamApiError) {
    return new ActionError(`JetStream rejected the message on "${subject}": ${e.message}`, {
      retryable: e.status >= 500,
      status: e.status,
      cause: err,
    })
  }
  const permanent =
    e instanceof natsCore().errors.InvalidSubjectError ||
    e instanceof natsCore().errors.InvalidArgumentError ||
    e instanceof natsCore().errors.PermissionViolationError
  return new ActionError(`nats publish to "${subject}" failed: ${e.message}`, {
    retryable: !permanent,
    cause: err,
  })
}

/** Publishes to NATS, or through JetStream (acknowledged, deduplicated by delivery_id). */
export const nats: ActionType<NatsAction> = {
  type: 'nats',
  defaultTimeoutMs,
  missingTransport: (_action, config) => missingEnv(config, ['NATS_URL']),
  templates: (action) => [action.subject, action.message_template],
  destination: () => 'env:NATS_URL',
  async execute(action, ctx) {
    const url = requireEnv(ctx.config, 'NATS_URL', 'nats')
    const subject = renderSubject(action, ctx)
    const data = renderMessage(action, ctx)
    const hdrs = natsCore().headers()
    hdrs.set('observer', ctx.delivery.observer)
    hdrs.set('delivery-id', ctx.delivery.delivery_id)
    try {
      const nc = await raceSignal(natsConnection(url, ctx.log), ctx.signal)
      if (action.jetstream) return await publishJetStream(nc, subject, data, hdrs, ctx)
      return await publishCore(nc, subject, data, hdrs, ctx)
    } catch (err) {
      throw natsFailure(err, subject, ctx.signal)
    }
  },
}
