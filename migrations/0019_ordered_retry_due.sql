-- A retried dead letter of an ordered row is due from its original place in the line, not from
-- the retry's transaction start. A fetch whose transaction began before the retry's (it waited
-- for its turn on the queue's advisory lock) counts "due" by its own start: the new job was not
-- due yet for it, and the row's next change, due, ran first (seen beside a second suite on a
-- loaded machine, test/db/inspection.test.ts). Only start_after changes from 0005.

create or replace function observers.requeue_dead_letters(
  observer text default null,
  action_type text default null,
  entity text default null,
  since timestamptz default null,
  until timestamptz default null,
  ids uuid[] default null,
  max_rows int default null
) returns table (id uuid, job_id uuid)
language plpgsql
as $$
#variable_conflict use_variable
begin
  return query
  with picked as materialized (
    select j.id, gen_random_uuid() as job_id, j.data, j.source_name, j.source_id,
           j.source_created_on, j.singleton_key, j.group_id, j.group_tier
      from pgboss.job j
      join pgboss.queue q on q.name = j.source_name
     where j.name = 'observers.dlq' and j.state = 'created'
       and (observer is null or j.data ->> 'observer' = observer)
       and (action_type is null or (j.data ->> 'action')::jsonb ->> 'type' = action_type)
       and (entity is null or j.data -> 'event' ->> 'entity' = entity)
       and (since is null or j.created_on >= since)
       and (until is null or j.created_on < until)
       and (ids is null or j.id = any (ids))
     order by j.created_on, j.id
     limit max_rows
       for update of j skip locked
  ),
  unblocked as (
    delete from pgboss.job f
     using picked p
     where p.source_name like '%.ordered' and f.name = p.source_name and f.id = p.source_id
       and f.state = 'failed'
  ),
  requeued as (
    insert into pgboss.job (
      id, name, data, priority, retry_limit, retry_delay, retry_backoff, retry_delay_max,
      expire_seconds, deletion_seconds, start_after, created_on, keep_until, policy, dead_letter,
      heartbeat_seconds, singleton_key, group_id, group_tier)
    select p.job_id, q.name, p.data - 'attempts', 0,
           (p.data -> 'retry' ->> 'max_attempts')::int,
           q.retry_delay, q.retry_backoff, q.retry_delay_max,
           ceil(coalesce(((p.data ->> 'action')::jsonb ->> 'timeout_ms')::numeric,
                         observers.default_timeout_ms((p.data ->> 'action')::jsonb ->> 'type')) / 1000)::int + 5,
           q.deletion_seconds,
           case when q.policy = 'key_strict_fifo' then coalesce(p.source_created_on, pgboss.job_now())
                else pgboss.job_now() end,
           case when q.policy = 'key_strict_fifo' then coalesce(p.source_created_on, pgboss.job_now())
                else pgboss.job_now() end,
           pgboss.job_now() + q.retention_seconds * interval '1 second',
           q.policy, q.dead_letter, q.heartbeat_seconds, p.singleton_key, p.group_id, p.group_tier
      from picked p
      join pgboss.queue q on q.name = p.source_name
  ),
  removed as (
    delete from pgboss.job d using picked p where d.name = 'observers.dlq' and d.id = p.id
  ),
  -- Wakes idle workers of those queues at commit, as pg-boss's insert() does on its channel;
  -- without it they find the jobs at their next poll.
  woken as (
    select pg_notify('pgboss_' || left(encode(sha224('pgboss'::bytea), 'hex'), 24), n.source_name)
      from (select distinct p.source_name from picked p) n
  )
  select p.id, p.job_id from picked p cross join (select count(*) from woken) w;
end
$$;
