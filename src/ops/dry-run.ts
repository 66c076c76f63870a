import { randomUUID } from 'node:crypto'
import type { ExplainNode } from '../conditions/index.ts'
import type { Config } from '../config/config.ts'
import { deliveryId } from '../dispatch/match.ts'
import { describeError, InputError } from '../errors/errors.ts'
import { type ChangeEvent, type EventKind, EventKinds } from '../event/event.ts'
import { normaliseEntity } from '../observers/load.ts'
import type { ActionConfig, Observer } from '../observers/types.ts'
import { renderJson, renderString, templateScope } from '../templates/render.ts'

export interface Check {
  ok: boolean
  detail: string
}

export interface ActionPreview {
  index: number
  type: string
  /** Each option as it would be used: templates rendered, `*_env` values masked. */
  rendered: Record<string, unknown>
  errors: string[]
}

/** What `observers test` reports: each filter's verdict, the condition tree, the actions. */
export interface DryRun {
  observer: string
  event: ChangeEvent
  fires: boolean
  checks: { entity: Check; event: Check; columns: Check; condition: Check }
  condition: ExplainNode | null
  actions: ActionPreview[]
}

const aliases: Record<string, EventKind> = { CREATED: 'INSERT', UPDATED: 'UPDATE', DELETED: 'DELETE' }

function kindOf(raw: Record<string, unknown>): EventKind {
  const given = typeof raw.event === 'string' ? raw.event.toUpperCase() : undefined
  const kind = given
    ? (aliases[given] ?? given)
    : raw.before && raw.after
      ? 'UPDATE'
      : raw.after
        ? 'INSERT'
        : 'DELETE'
  if (!(EventKinds as readonly string[]).includes(kind)) {
    throw new InputError(`event must be INSERT, UPDATE or DELETE; got "${raw.event}"`)
  }
  return kind as EventKind
}

function changedColumns(before: Record<string, unknown> | null, after: Record<string, unknown> | null) {
  if (!before || !after) return []
  const keys = new Set([...Object.keys(before), ...Object.keys(after)])
  return [...keys].filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k])).sort()
}

const row = (v: unknown) =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null
const text = (v: unknown, fallback: string | null) => (v === undefined || v === null ? fallback : String(v))

/**
 * A full event (SPEC §5) or a sketch of one: `{ "event": "UPDATE", "before": {…}, "after": {…} }`.
 * Missing fields are filled the way the capture trigger would (changed from the two images).
 */
export function eventFrom(input: unknown, observer: Observer): ChangeEvent {
  const raw = row(input)
  if (!raw) throw new InputError('the event must be a JSON object')
  const before = row(raw.before)
  const after = row(raw.after)
  const kind = kindOf(raw)
  return {
    id: text(raw.id, randomUUID()) as string,
    seq: Number(raw.seq ?? 0),
    event: kind,
    entity: typeof raw.entity === 'string' ? normaliseEntity(raw.entity) : observer.entity,
    entity_id: text(raw.entity_id, text((after ?? before)?.id, '')) as string,
    before,
    after,
    changed: Array.isArray(raw.changed)
      ? raw.changed.map(String)
      : kind === 'UPDATE'
        ? changedColumns(before, after)
        : [],
    tenant_id: text(raw.tenant_id, null),
    actor_id: text(raw.actor_id, null),
    txid: text(raw.txid, '0') as string,
    created_at: text(raw.created_at, new Date().toISOString()) as string,
    ...(typeof raw.traceparent === 'string' ? { traceparent: raw.traceparent } : {}),
  }
}

function checks(o: Observer, e: ChangeEvent): DryRun['checks'] {
  const entity = { ok: e.entity === o.entity, detail: `${e.entity} (observer watches ${o.entity})` }
  const event = {
    ok: o.events.has(e.event),
    detail: `${e.event} (observer fires on ${[...o.events].join(', ')})`,
  }
  let columns: Check = { ok: true, detail: 'not an UPDATE: no column filter' }
  if (e.event === 'UPDATE') {
    const changed = e.changed.length > 0 ? e.changed.join(', ') : 'nothing'
    if (e.changed.length === 0 && !o.noopUpdates) columns = { ok: false, detail: 'no column changed' }
    else if (o.columns && !o.columns.some((c) => e.changed.includes(c)))
      columns = { ok: false, detail: `changed ${changed}; observer needs one of ${o.columns.join(', ')}` }
    else columns = { ok: true, detail: `changed ${changed}` }
  }
  const condition = o.condition
    ? { ok: o.condition.test(e), detail: o.condition.source }
    : { ok: true, detail: 'no condition' }
  return { entity, event, columns, condition }
}

function maskEnv(value: unknown, config: Config): unknown {
  const mask = (name: unknown) => `${String(name)} = ${config.env[String(name)] ? '***' : '(not set)'}`
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mask(v)]))
  }
  return mask(value)
}

/** Each option of `action` as an attempt would use it: templates rendered, `*_env` values masked. */
export function renderActionOptions(
  action: ActionConfig,
  scope: Record<string, unknown>,
  config: Config,
): { rendered: Record<string, unknown>; errors: string[] } {
  const rendered: Record<string, unknown> = {}
  const errors: string[] = []
  for (const [key, value] of Object.entries(action)) {
    if (key === 'type') continue
    try {
      rendered[key] = key.endsWith('_env')
        ? maskEnv(value, config)
        : typeof value === 'string'
          ? renderString(value, scope)
          : renderJson(value, scope)
    } catch (err) {
      errors.push(`${key}: ${describeError(err)}`)
    }
  }
  return { rendered, errors }
}

function previewAction(o: Observer, action: ActionConfig, index: number, e: ChangeEvent, config: Config) {
  const delivery = {
    delivery_id: deliveryId(e.id, o.name, index),
    observer: o.name,
    action_index: index,
    action,
    retry: { ...o.retry, ...action.retry },
    on_failure: o.onFailure,
    event: e,
  }
  const preview: ActionPreview = {
    index,
    type: action.type,
    ...renderActionOptions(action, templateScope(delivery, 1), config),
  }
  // A webhook without body_template sends the event itself.
  if (action.type === 'webhook' && action.body_template === undefined) preview.rendered.body = e
  return preview
}

/** Evaluates `observer` against `event` without sending anything. */
export function dryRun(o: Observer, event: ChangeEvent, config: Config): DryRun {
  const c = checks(o, event)
  const fires = Object.values(c).every((x) => x.ok)
  return {
    observer: o.name,
    event,
    fires,
    checks: c,
    condition: o.condition ? o.condition.explain(event) : null,
    actions: o.actions.map((a, i) => previewAction(o, a, i, event, config)),
  }
}
