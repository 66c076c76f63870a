import { type DeliveryOutcome, DeliveryOutcomes, listDeliveries } from '../db/queries/deliveries.ts'
import { InputError } from '../errors/errors.ts'
import { normaliseEntity } from '../observers/load.ts'
import { parsePositiveInt, parseTime } from './filters.ts'
import { sendJson } from './http.ts'
import type { RouteContext } from './types.ts'

const defaultLimit = 100
const maxLimit = 1000

function outcomeOf(text: string | undefined): DeliveryOutcome | undefined {
  if (!text) return undefined
  const found = DeliveryOutcomes.find((o) => o === text)
  if (!found) {
    throw new InputError(`outcome must be one of ${DeliveryOutcomes.join(', ')}; got "${text}"`)
  }
  return found
}

function text(value: string | undefined, what: string): string | undefined {
  if (!value) return undefined
  if (value.includes('\u0000')) throw new InputError(`${what} must not hold NUL`)
  return value
}

/** GET /api/deliveries: the delivery record, newest attempt first. */
export async function listDeliveryRecord({ url, res, worker }: RouteContext) {
  const q = Object.fromEntries(url.searchParams)
  const entity = text(q.entity, 'entity')
  const deliveries = await listDeliveries(worker.pool, {
    observer: text(q.observer, 'observer'),
    outcome: outcomeOf(q.outcome),
    since: q.since ? parseTime(q.since, 'since') : undefined,
    entity: entity ? normaliseEntity(entity) : undefined,
    entityId: text(q.entity_id, 'entity_id'),
    limit: q.limit ? parsePositiveInt(q.limit, 'limit', maxLimit) : defaultLimit,
  })
  sendJson(res, 200, { deliveries })
}
