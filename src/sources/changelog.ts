import { backlog, claimChanges, type UnreadableChange } from '../db/queries/change-log.ts'
import { statements } from '../db/statements.ts'
import { ErrorCode } from '../errors/errors.ts'
import { ownSource } from '../observers/types.ts'
import type { ChangeSource, MalformedEntry } from './types.ts'

function malformed(u: UnreadableChange): MalformedEntry {
  const { error, ...entry } = u
  const key = String(u.seq)
  return { key, code: ErrorCode.DatabaseError, error, entity: u.entity, entityId: u.entity_id, entry }
}

/**
 * Our own observers.change_log: claiming marks the rows dispatched in the caller's transaction,
 * NOTIFY wakes the dispatcher, and the partitions its listener leads decide what it claims.
 */
export function changeLogSource(pollMs: number, preparedStatements = true): ChangeSource {
  const run = statements(preparedStatements)
  return {
    name: ownSource,
    kind: 'changelog',
    wake: 'notify',
    pollMs,
    async claim(client, limits, scope) {
      const { events, unreadable, more } = await claimChanges(client, limits, run, scope)
      return { events, malformed: unreadable.map(malformed), more, record: async () => {} }
    },
    async backlog(db) {
      const b = await backlog(db)
      return { backlog: b.undispatched, oldestAgeSeconds: b.oldestAgeSeconds }
    },
    async close() {},
  }
}
