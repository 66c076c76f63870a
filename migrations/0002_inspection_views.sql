-- Views for psql over pg-boss's job table. Job payloads are written by src/queue/boss.ts (see
-- docs/database.md): observer, action_index, action (JSON text), delivery_id, event, attempts[].

create view observers.dlq as
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
       j.source_name as source_queue,
       j.source_id
  from pgboss.job j
 where j.name = 'observers.dlq' and j.state = 'created';

create view observers.pending_retries as
select j.id,
       j.name as queue,
       j.data ->> 'observer' as observer,
       (j.data ->> 'action_index')::int as action_index,
       j.data ->> 'delivery_id' as delivery_id,
       j.data -> 'event' ->> 'entity' as entity,
       j.data -> 'event' ->> 'entity_id' as entity_id,
       jsonb_array_length(coalesce(j.data -> 'attempts', '[]')) as failed_attempts,
       j.data -> 'attempts' -> -1 ->> 'error' as last_error,
       j.start_after as next_attempt_at
  from pgboss.job j
 where j.name like 'observers.%' and j.name <> 'observers.dlq' and j.state = 'retry';

create view observers.retry_exhausted as
select j.id,
       j.name as queue,
       j.data ->> 'observer' as observer,
       (j.data ->> 'action_index')::int as action_index,
       j.data ->> 'delivery_id' as delivery_id,
       j.data -> 'event' ->> 'entity' as entity,
       j.data -> 'event' ->> 'entity_id' as entity_id,
       jsonb_array_length(coalesce(j.data -> 'attempts', '[]')) as attempts,
       j.data -> 'attempts' -> -1 ->> 'error' as last_error,
       j.completed_on as failed_at
  from pgboss.job j
 where j.name like 'observers.%' and j.name <> 'observers.dlq' and j.state = 'failed';

create view observers.recent_failures as
select j.id as job_id,
       j.name as queue,
       j.data ->> 'observer' as observer,
       (j.data ->> 'action_index')::int as action_index,
       j.data ->> 'delivery_id' as delivery_id,
       j.data -> 'event' ->> 'entity' as entity,
       j.data -> 'event' ->> 'entity_id' as entity_id,
       (a ->> 'attempt')::int as attempt,
       a ->> 'code' as code,
       a ->> 'error' as error,
       (a ->> 'at')::timestamptz as failed_at
  from pgboss.job j
 cross join lateral jsonb_array_elements(coalesce(j.data -> 'attempts', '[]')) as a
 where j.name like 'observers.%'
   and (a ->> 'at')::timestamptz > now() - interval '24 hours';
