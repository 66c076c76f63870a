import type { ChangeEvent, EventKind, Row } from '../../src/event/event.ts'
import { parseExact } from '../../src/json/exact.ts'

/** Parses a row the way the capture pipeline does, so 12.5000000000 and 2^53+1 stay exact. */
export function row(json: string): Row {
  return parseExact(json) as Row
}

/** A change event with the given images (JSON text) and sensible defaults for the rest. */
export function changeEvent(
  event: EventKind,
  images: { before?: string; after?: string },
  extra: Partial<ChangeEvent> = {},
): ChangeEvent {
  return {
    id: '00000000-0000-4000-8000-000000000001',
    seq: 1,
    event,
    entity: 'public.orders',
    entity_id: '42',
    before: images.before === undefined ? null : row(images.before),
    after: images.after === undefined ? null : row(images.after),
    changed: [],
    tenant_id: 'acme',
    actor_id: 'user-7',
    txid: '812',
    created_at: '2025-01-01T00:00:00.000Z',
    ...extra,
  }
}

const orderBefore = `{
  "id": 42, "status": "pending", "total": 150, "discount": null, "paid": false,
  "customer": {"tier": "gold", "name": "Ada"}, "tags": ["a", "b"], "items": [{"sku": "A1"}],
  "big": 9007199254740993, "price": 12.5000000000, "quote": "it's", "path": "C:\\\\dir"
}`
const orderAfter = orderBefore
  .replace('"pending"', '"shipped"')
  .replace('"paid": false', '"paid": true')
  .replace('"gold"', '"platinum"')

/** An order moving from pending to shipped: status, paid and customer.tier change. */
export const shipped = changeEvent(
  'UPDATE',
  { before: orderBefore, after: orderAfter },
  { changed: ['status', 'paid', 'customer'] },
)

export const inserted = changeEvent('INSERT', { after: '{"id": 7, "status": "new", "total": 20}' })

export const deleted = changeEvent('DELETE', { before: '{"id": 9, "status": "cancelled", "total": 5}' })

/** A row that has its own `tenant_id` and `event` columns, differing from the event's fields. */
export const withEventColumns = changeEvent('INSERT', {
  after: '{"id": 1, "tenant_id": "row-tenant", "event": "signup"}',
})

/** The trigger listed `status` as changed although both images agree (e.g. a type-only change). */
export const listedOnly = changeEvent(
  'UPDATE',
  { before: '{"status": "a"}', after: '{"status": "a"}' },
  { changed: ['status'] },
)

/** Images differ but the event carries no `changed` list. */
export const diffOnly = changeEvent('UPDATE', { before: '{"status": "a"}', after: '{"status": "b"}' })

/** A key that was JSON null before and is absent after: a change, unlike null to null. */
export const nullToAbsent = changeEvent('UPDATE', {
  before: '{"note": null, "other": null}',
  after: '{"other": null}',
})
