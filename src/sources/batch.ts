import { recordPass } from './ledger.ts'
import type { ClaimedBatch, MalformedEntry, SourceEntry, SourceEvent } from './types.ts'

/**
 * The batch of a ledger-backed source: well-formed entries become events, malformed ones
 * dead letters, and all of them join the ledger when the batch is recorded.
 */
export function ledgerBatch(
  source: string,
  entries: readonly SourceEntry[],
  pass: { readAt: string; windowMs: number; complete: boolean; lastRead?: string | undefined },
): ClaimedBatch {
  const events: SourceEvent[] = []
  const malformed: MalformedEntry[] = []
  for (const e of entries) {
    if ('event' in e) events.push(e.event)
    else malformed.push(e.malformed)
  }
  const { readAt, windowMs, complete } = pass
  const until = complete ? null : (pass.lastRead ?? entries.at(-1)?.createdAt ?? null)
  const ledger = entries.map((e) => ({ key: e.key, createdAt: e.createdAt, malformed: 'malformed' in e }))
  return {
    events,
    malformed,
    more: !complete,
    record: (client) => recordPass(client, source, { readAt, windowMs, entries: ledger, until }),
  }
}
