import type { Queryable } from '../pool.ts'

export interface BacklogSample {
  at: string
  backlog: number
  oldest_seconds: number
}

/**
 * Writes the backlog of the current `intervalSeconds` bucket unless another worker already did,
 * and drops samples older than `keepSeconds`. Counts only when the bucket is still free.
 */
export async function recordBacklogSample(
  db: Queryable,
  intervalSeconds: number,
  keepSeconds: number,
): Promise<void> {
  await db.query(
    `with bucket as (
       select date_bin($1::int * interval '1 second', now(), timestamptz 'epoch') as at),
     pruned as (
       delete from observers.backlog_samples where at < now() - $2::int * interval '1 second')
     insert into observers.backlog_samples (at, backlog, oldest_seconds)
     select b.at, n.backlog, n.oldest_seconds
       from bucket b
      cross join lateral (
        select count(*) as backlog,
               coalesce(round(extract(epoch from now() - min(c.created_at))), 0)::int as oldest_seconds
          from observers.change_pending p join observers.change_log c using (seq)) n
      where not exists (select 1 from observers.backlog_samples s where s.at = b.at)
     on conflict (at) do nothing`,
    [intervalSeconds, keepSeconds],
  )
}

/** The samples of the last `seconds`, oldest first. */
export async function listBacklogSamples(db: Queryable, seconds: number): Promise<BacklogSample[]> {
  const { rows } = await db.query<{ at: Date; backlog: string; oldest_seconds: number }>(
    `select at, backlog, oldest_seconds from observers.backlog_samples
      where at >= now() - $1::int * interval '1 second' order by at`,
    [seconds],
  )
  return rows.map((r) => ({
    at: r.at.toISOString(),
    backlog: Number(r.backlog),
    oldest_seconds: r.oldest_seconds,
  }))
}
