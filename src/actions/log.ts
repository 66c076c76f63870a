import type { ActionConfig } from '../observers/types.ts'
import { renderString } from '../templates/render.ts'
import type { ActionType } from './types.ts'

export interface LogAction extends ActionConfig {
  type: 'log'
  message_template?: string
  level?: 'debug' | 'info' | 'warn' | 'error'
}

/** Writes the rendered message as a structured log line: for demos and debugging. */
export const log: ActionType<LogAction> = {
  type: 'log',
  defaultTimeoutMs: 5_000,
  missingTransport: () => [],
  templates: (action) => [action.message_template],
  async execute(action, ctx) {
    const { event } = ctx.delivery
    const message =
      action.message_template === undefined
        ? `${event.event} ${event.entity} ${event.entity_id}`
        : renderString(action.message_template, ctx.scope)
    ctx.log[action.level ?? 'info'](
      {
        observer: ctx.delivery.observer,
        delivery_id: ctx.delivery.delivery_id,
        entity: event.entity,
        entity_id: event.entity_id,
        event: event.event,
      },
      message,
    )
    return { detail: { message } }
  },
}
