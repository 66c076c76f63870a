/** A row image as delivered by the capture trigger; numbers may be ExactNumber (src/json/exact.ts). */
export type Row = Record<string, unknown>

export const EventKinds = ['INSERT', 'UPDATE', 'DELETE'] as const
export type EventKind = (typeof EventKinds)[number]

/** The event of SPEC §5: what conditions and templates see, and the default webhook body. */
export interface ChangeEvent {
  id: string
  seq: number
  event: EventKind
  entity: string
  entity_id: string
  before: Row | null
  after: Row | null
  changed: string[]
  tenant_id: string | null
  actor_id: string | null
  txid: string
  created_at: string
  traceparent?: string | null
}
