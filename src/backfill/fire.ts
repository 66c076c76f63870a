import { type Pool, withTransaction } from '../db/pool.ts'
import { ConfigError, ErrorCode } from '../errors/errors.ts'
import { type Observer, ownSource } from '../observers/types.ts'
import { enqueue, type Queue } from '../queue/boss.ts'
import { describeTable, parseRowKey, readSnapshots } from './rows.ts'
import { snapshotJobs } from './snapshot-jobs.ts'

export interface FireResult {
  observer: string
  entity: string
  entity_id: string
  seq: number
  delivery_ids: string[]
}

/** The observer of `observers` named `name`; OB002 when there is none. */
export function observerNamed(observers: readonly Observer[], name: string): Observer {
  const found = observers.find((o) => o.name === name)
  if (!found) throw new ConfigError(ErrorCode.NoMatchingObservers, `no running observer named "${name}"`)
  if (found.source !== ownSource) {
    throw new ConfigError(
      ErrorCode.InvalidConfig,
      `observer "${name}" reads source "${found.source}"; only observers of watched tables can fire on a row`,
    )
  }
  return found
}

/**
 * Reads the row whose primary key is `rowKey` (one value, or a JSON array for a composite key)
 * and queues its current state through `observer` as a snapshot event, in one transaction.
 */
export async function fireRow(
  deps: { pool: Pool; queue: Queue },
  observer: Observer,
  rowKey: string,
  opts: { force: boolean },
): Promise<FireResult> {
  return withTransaction(deps.pool, async (client) => {
    const table = await describeTable(client, observer.entity)
    const { events } = await readSnapshots(client, table, { key: parseRowKey(rowKey, table) })
    const [event] = events
    if (!event)
      throw new ConfigError(ErrorCode.InvalidConfig, `${table.entity} has no row with key ${rowKey}`)
    const jobs = snapshotJobs([observer], [event], opts.force)
    if (jobs.length === 0) {
      throw new ConfigError(
        ErrorCode.NoMatchingObservers,
        `the condition of "${observer.name}" is false for ${table.entity} ${event.entity_id}; nothing sent (force delivers it anyway)`,
      )
    }
    await enqueue(deps.queue, client, jobs)
    return {
      observer: observer.name,
      entity: event.entity,
      entity_id: event.entity_id,
      seq: event.seq,
      delivery_ids: jobs.map((j) => j.delivery.delivery_id),
    }
  })
}
