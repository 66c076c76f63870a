import type { PoolClient } from '../db/pool.ts'
import type { Statements } from '../db/statements.ts'
import { coerceError, ErrorCode } from '../errors/errors.ts'
import { enqueue, type Queue, type QueuedDelivery } from '../queue/boss.ts'
import type { MalformedEntry, SourceEvent } from '../sources/types.ts'
import type { Matcher } from './match.ts'

/**
 * Errors a change's own data causes, which no retry can cure: Postgres data exceptions (22xxx),
 * program limits such as jsonb's 255 MB (54xxx), and JavaScript's own limits (RangeError).
 */
export function isDataError(err: unknown): boolean {
  if (err instanceof RangeError) return true
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^(22|54)[0-9A-Z]{3}$/.test(code)
}

/**
 * Enqueues change by change, each under a savepoint, after a whole batch failed with a data
 * error: the changes whose jobs cannot be stored become malformed entries, the others flow.
 */
export async function enqueueEach(
  deps: { matcher: () => Matcher; queue: Queue; statements: Statements },
  client: PoolClient,
  events: SourceEvent[],
  source: string,
) {
  const match = deps.matcher()
  const jobs: QueuedDelivery[] = []
  const malformed: MalformedEntry[] = []
  for (const e of events) {
    const mine = match(e, source)
    if (mine.length === 0) continue
    await client.query('savepoint observers_change')
    try {
      await enqueue(deps.queue, client, mine, { announce: false, statements: deps.statements })
      await client.query('release savepoint observers_change')
      jobs.push(...mine)
    } catch (err) {
      if (!isDataError(err)) throw err
      await client.query('rollback to savepoint observers_change')
      const { id, seq, event, entity, entity_id } = e
      const error = `change ${seq} cannot be queued: ${coerceError(err).message}`
      const entry = { id, seq, event, entity, entity_id }
      malformed.push({
        key: String(seq),
        code: ErrorCode.DatabaseError,
        error,
        entity,
        entityId: entity_id,
        entry,
      })
    }
  }
  return { jobs, malformed }
}
