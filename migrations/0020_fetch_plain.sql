-- A plain queue's fetch as one function, planned once per connection: pg-boss's own fetch inlines
-- the queue name, so the server plans it on every call (~0.5 ms at light load, more than it takes
-- to run; docs/performance.md). It takes what pg-boss's standard fetch takes: due jobs in
-- (priority desc, created_on) order, skipping locked ones, and counts the attempt as pg-boss does.
--
-- A plan kept for the life of a connection must not depend on statistics that were taken while
-- the queue was empty: with them the planner may read every waiting job and sort (90 ms per call
-- at 100 000 waiting, where the ordered index needs 16 rows). Sorting, sequential and bitmap scans
-- are off while it plans, which leaves the index that is already in fetch order (pg-boss's
-- job_i11); the claimed rows are then updated by their row address, locked since the walk, so
-- no estimate can choose how they are found again.

create or replace function observers.fetch_plain(queue text, batch_size int)
returns table (id uuid, data jsonb, "retryCount" int)
language plpgsql
set enable_sort = off
set enable_seqscan = off
set enable_bitmapscan = off
as $$
#variable_conflict use_column
begin
  return query
  update pgboss.job_common j
     set state = 'active',
         started_on = pgboss.job_now(),
         heartbeat_on = pgboss.job_now(),
         retry_count = case when j.started_on is not null then j.retry_count + 1 else j.retry_count end
   where j.ctid = any (array(
           select n.ctid from pgboss.job_common n
            where n.name = queue and n.state < 'active' and not n.blocked
              and n.start_after <= pgboss.job_now()
            order by n.priority desc, n.created_on
            limit batch_size
              for update of n skip locked))
  returning j.id, j.data, j.retry_count;
end
$$;
