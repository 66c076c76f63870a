-- The psql views read pg-boss's job table through a function, and dead letters can be retried
-- from psql (docs/database.md).
--
-- 1. A view over pgboss.job records a dependency on each column it reads, so pg-boss's own
--    migrations and rollbacks could not drop or change those columns (a rollback below pg-boss
--    schema 34 failed on source_name). observers.queue_jobs() is a SQL function: its body is
--    resolved each time a query uses it, and Postgres inlines it there, so filters still reach
--    pg-boss's indexes. It reads only columns every pg-boss schema has; source_name and
--    source_id, which not all have, are read from the row as JSON and are null where absent.
--    The views keep their columns, so views of users' own built on them stay.
-- 2. recent_failures listed each attempt of a dead letter twice (the source queue's job and
--    its DLQ copy), and retry_exhausted kept listing deliveries retried successfully since.
-- 3. observers.requeue_dead_letters(...) puts dead letters back on their queues; `observers
--    dlq retry` and the API (src/queue/dlq.ts) call it, and so do psql's
--    observers.retry_dead_letter(id) and observers.retry_dead_letters(...).

-- Jobs of our queues, optionally of one queue and in one state. The filters are parameters so
-- that, inlined with constants, they match pg-boss's indexes on (name, state).
create function observers.queue_jobs(of_queue text default null, in_state text default null)
returns table (
  id uuid, queue text, state text, data jsonb, created_on timestamptz, completed_on timestamptz,
  start_after timestamptz, source_queue text, source_id uuid
)
language sql stable
as $$
  select j.id, j.name, j.state::text, j.data, j.created_on, j.completed_on, j.start_after,
         to_jsonb(j) ->> 'source_name', (to_jsonb(j) ->> 'source_id')::uuid
    from pgboss.job j
   where j.name like 'observers.%'
     and ($1 is null or j.name = $1)
     and ($2 is null or j.state = $2::pgboss.job_state)
$$;

create or replace view observers.dlq as
select j.id,
       j.data ->> 'observer' as observer,
       (j.data ->> 'action')::jsonb ->> 'type' as action_type,
       (j.data ->> 'action_index')::int as action_index,
       j.data ->> 'delivery_id' as delivery_id,
       (j.data -> 'event' ->> 'id')::uuid as event_id,
       j.data -> 'event' ->> 'event' as event,
       j.data -> 'event' ->> 'entity' as entity,
       j.data -> 'event' ->> 'entity_id' as entity_id,
       j.data -> 'attempts' -> -1 ->> 'error' as last_error,
       j.data -> 'attempts' -> -1 ->> 'code' as last_error_code,
       jsonb_array_length(coalesce(j.data -> 'attempts', '[]')) as attempts,
       j.created_on as failed_at,
       j.source_queue,
       j.source_id
  from observers.queue_jobs('observers.dlq', 'created') j;

create or replace view observers.pending_retries as
select j.id,
       j.queue,
       j.data ->> 'observer' as observer,
       (j.data ->> 'action_index')::int as action_index,
       j.data ->> 'delivery_id' as delivery_id,
       j.data -> 'event' ->> 'entity' as entity,
       j.data -> 'event' ->> 'entity_id' as entity_id,
       jsonb_array_length(coalesce(j.data -> 'attempts', '[]')) as failed_attempts,
       j.data -> 'attempts' -> -1 ->> 'error' as last_error,
       j.start_after as next_attempt_at
  from observers.queue_jobs(in_state => 'retry') j
 where j.queue <> 'observers.dlq';

-- A delivery counts until a later job of it in its queue (a DLQ retry or a replay) completes;
-- pg-boss's (name, created_on) index finds those.
create or replace view observers.retry_exhausted as
select j.id,
       j.queue,
       j.data ->> 'observer' as observer,
       (j.data ->> 'action_index')::int as action_index,
       j.data ->> 'delivery_id' as delivery_id,
       j.data -> 'event' ->> 'entity' as entity,
       j.data -> 'event' ->> 'entity_id' as entity_id,
       jsonb_array_length(coalesce(j.data -> 'attempts', '[]')) as attempts,
       j.data -> 'attempts' -> -1 ->> 'error' as last_error,
       j.completed_on as failed_at
  from observers.queue_jobs(in_state => 'failed') j
 where j.queue <> 'observers.dlq'
   and not exists (
         select 1 from observers.queue_jobs(in_state => 'completed') k
          where k.queue = j.queue and k.created_on > j.created_on
            and k.data ->> 'delivery_id' = j.data ->> 'delivery_id');

-- A dead letter carries its source job's attempts; those are listed once, from the source job
-- while it is retained: found by its primary key, or, where pg-boss kept no source_id, by the
-- delivery id.
create or replace view observers.recent_failures as
select j.id as job_id,
       j.queue,
       j.data ->> 'observer' as observer,
       (j.data ->> 'action_index')::int as action_index,
       j.data ->> 'delivery_id' as delivery_id,
       j.data -> 'event' ->> 'entity' as entity,
       j.data -> 'event' ->> 'entity_id' as entity_id,
       (a ->> 'attempt')::int as attempt,
       a ->> 'code' as code,
       a ->> 'error' as error,
       (a ->> 'at')::timestamptz as failed_at
  from observers.queue_jobs() j
 cross join lateral jsonb_array_elements(coalesce(j.data -> 'attempts', '[]')) as a
 where (a ->> 'at')::timestamptz > now() - interval '24 hours'
   and not (j.queue = 'observers.dlq' and (
         exists (select 1 from observers.queue_jobs() s
                  where s.queue = j.source_queue and s.id = j.source_id
                    and s.data -> 'attempts' @> jsonb_build_array(a))
         or (j.source_id is null and exists (
               select 1 from observers.queue_jobs() s
                where s.queue <> 'observers.dlq'
                  and s.data ->> 'delivery_id' = j.data ->> 'delivery_id'
                  and s.data -> 'attempts' @> jsonb_build_array(a)))));

-- The default timeout of each action type (src/actions/*.ts), for the expiry of a retried job.
create function observers.default_timeout_ms(action_type text) returns int
language sql immutable
as $$
  select case $1 when 'email' then 30000 when 'log' then 5000 when 'cache' then 5000
                 when 'nats' then 5000 else 10000 end
$$;

-- Puts the selected dead letters back on their source queues as fresh jobs, and returns each
-- one's id with the id of its new job. `observers dlq retry` and the API call it, as do
-- retry_dead_letter(s) below: attempts cleared, same delivery id, the max_attempts and time limit
-- of a first dispatch, and the dead letter removed, in one statement. For an ordered row, the
-- failed job holding the row's key is removed and the new job keeps the original's place, ahead
-- of the row's later changes (pg-boss runs a key's jobs in created_on order). Dead letters whose
-- source queue no longer exists (and malformed entries, which have none) stay. Dead letters
-- locked by a concurrent retry are skipped. Jobs are inserted as pg-boss documents for SQL, with
-- the settings its insert() takes from the queue.
create function observers.requeue_dead_letters(
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
           q.deletion_seconds, pgboss.job_now(),
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

-- psql's retry: the dead letters dead-lettered within `since`, of `observer`, ... (every
-- argument narrows; none retries them all). Returns how many went back.
create function observers.retry_dead_letters(
  observer text default null,
  since interval default null,
  action_type text default null,
  entity text default null,
  ids uuid[] default null
) returns int
language sql
as $$
  select count(*)::int
    from observers.requeue_dead_letters(observer => $1, since => now() - $2, action_type => $3,
                                        entity => $4, ids => $5)
$$;

create function observers.retry_dead_letter(id uuid) returns boolean
language sql
as $$
  select observers.retry_dead_letters(ids => array[$1]) = 1
$$;
