import { recordPass } from './ledger.ts'
import type { ClaimedBatch, MalformedEntry, SourceEntry, SourceEvent } from './types.ts'

/**
 * The batch of a ledger-backed source: well-formed entries become events, malformed ones
 * dead letters, and all of them join the ledger when the batch is recorded.
 */
export function ledgerBatch(
  source: string,
  entries: readonly SourceEntry[],
  pass: { readAt: string; windowMs: number; limit: number },
): ClaimedBatch {
  const events: SourceEvent[] = []
  const malformed: MalformedEntry[] = []
  for (const e of entries) {
    if ('event' in e) events.push(e.event)
    else malformed.push(e.malformed)
  }
  const complete = entries.length < pass.limit
  const ledger = entries.map((e) => ({ key: e.key, createdAt: e.createdAt, malformed: 'malformed' in e }))
  return {
    events,
    malformed,
    more: !complete,
    record: (client) => recordPass(client, source, { ...pass, entries: ledger, complete }),
  }
}
