import type { Pool } from '../../src/db/pool.ts'
import { eventually } from './worker.ts'

/**
 * Waits until every captured change of `entity` (of one row, given `entityId`) is dispatched and
 * each job it made has finished (completed, failed or cancelled). A delivery of those changes
 * that has not reached its receiver by then never will: the dispatcher makes all jobs of a change
 * in the transaction that claims it, and a job finishes only after its request was answered.
 * `entity` is schema-qualified.
 */
export async function changesSettled(
  pool: Pool,
  entity: string,
  entityId?: string | number,
  timeoutMs = 60_000,
): Promise<void> {
  await eventually(
    async () => {
      const { rows } = await pool.query<{ captured: number; pending: number; running: number }>(
        `with c as (select seq from observers.change_log where entity = $1 and ($2::text is null or entity_id = $2))
         select (select count(*) from c)::int as captured,
                (select count(*) from observers.change_pending where seq in (select seq from c))::int as pending,
                (select count(*) from pgboss.job
                  where name like 'observers.%' and name <> 'observers.dlq' and state < 'completed'
                    and (data -> 'event' ->> 'seq')::bigint in (select seq from c))::int as running`,
        [entity, entityId === undefined ? null : String(entityId)],
      )
      const r = rows[0]!
      return r.captured > 0 && r.pending === 0 && r.running === 0
    },
    timeoutMs,
    `every change of ${entity} ${entityId ?? ''} dispatched and its jobs finished`,
  )
}

/** Waits until no delivery job is waiting, retrying or running. */
export async function jobsFinished(pool: Pool, timeoutMs = 60_000): Promise<void> {
  await eventually(
    async () => {
      const { rows } = await pool.query<{ n: number }>(
        `select count(*)::int as n from pgboss.job
          where name like 'observers.%' and name <> 'observers.dlq' and state < 'completed'`,
      )
      return rows[0]!.n === 0
    },
    timeoutMs,
    'every delivery job finished',
  )
}
