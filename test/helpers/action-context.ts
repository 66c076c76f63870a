import { randomUUID } from 'node:crypto'
import type { ActionContext } from '../../src/actions/types.ts'
import { loadConfig } from '../../src/config/config.ts'
import { deliveryId } from '../../src/dispatch/match.ts'
import type { Delivery } from '../../src/event/delivery.ts'
import type { ChangeEvent } from '../../src/event/event.ts'
import { createLogger } from '../../src/log/log.ts'
import type { ActionConfig } from '../../src/observers/types.ts'
import { defaultRetry } from '../../src/observers/types.ts'
import { actionTimeoutMs } from '../../src/queue/policy.ts'
import { templateScope } from '../../src/templates/render.ts'

/** A change event as the capture trigger would deliver it, for calling an action directly. */
export function changeEvent(fields: Partial<ChangeEvent> = {}): ChangeEvent {
  return {
    id: randomUUID(),
    seq: 1,
    event: 'INSERT',
    entity: 'public.items',
    entity_id: '1',
    before: null,
    after: { id: 1 },
    changed: [],
    tenant_id: null,
    actor_id: null,
    txid: '1',
    created_at: new Date().toISOString(),
    ...fields,
  }
}

/** What the worker hands an action for one attempt, built from a delivery and an environment. */
export function actionContext(
  delivery: Delivery,
  env: Record<string, string>,
  signal: AbortSignal = AbortSignal.timeout(10_000),
): ActionContext {
  return {
    config: loadConfig(env),
    log: createLogger('silent'),
    delivery,
    attempt: 1,
    signal,
    timeoutMs: actionTimeoutMs(delivery.action),
    scope: templateScope(delivery, 1),
  }
}

export function delivery(action: ActionConfig, event: ChangeEvent = changeEvent()): Delivery {
  return {
    delivery_id: deliveryId(event.id, 'direct', 0),
    observer: 'direct',
    action_index: 0,
    action,
    retry: defaultRetry,
    on_failure: 'dlq',
    event,
  }
}
