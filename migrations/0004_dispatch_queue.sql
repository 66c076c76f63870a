-- Two changes to how captured changes reach the dispatcher (docs/database.md, docs/performance.md).
--
-- 1. A queue of undispatched changes. The dispatcher used to claim from change_log through a
--    partial index "where dispatched_at is null". Marking a row dispatched leaves its entry in
--    that index, dead, until a vacuum of the whole table, and every claim walked past all of
--    them: 1 ms per claim per 200 000 dispatched rows, growing with retention. Claims now delete
--    from change_pending, which holds only the seq of each undispatched change and is small
--    enough for autovacuum to keep clean; change_log still records dispatched_at.
--
-- 2. NOTIFY only while the dispatcher sleeps. A NOTIFY makes its transaction take a
--    database-wide lock at commit, so commits that notify are serialised, WAL flush included: at
--    a few thousand commits a second it halved the rate at which an application could commit into
--    a watched table. The sleeping dispatcher holds advisory lock 7311902116 exclusively
--    (src/dispatch/listener.ts), and only then does a capture notify. While it is awake (catching
--    up, or polling under load) and while no worker runs at all, commits send nothing.
--    Nothing is missed: a transaction that does not notify holds the lock shared until it ends,
--    and the dispatcher takes it exclusively (try, never wait) before its last pass and sleep. It
--    cannot succeed while such a transaction is in flight; once it has, every later capture sees
--    the lock held and notifies.

create table observers.change_pending (seq bigint primary key)
  with (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_cost_delay = 0);

insert into observers.change_pending (seq) select seq from observers.change_log where dispatched_at is null;

drop index observers.change_log_undispatched;

create or replace function observers.capture() returns trigger
language plpgsql as $$
declare
  old_row jsonb;
  new_row jsonb;
  row_image jsonb;
  changed_cols text[] := '{}';
  key_cols text[] := TG_ARGV[3:];
  actor text;
  captured bigint;
begin
  if TG_OP = 'INSERT' then
    new_row := to_jsonb(NEW);
    row_image := new_row;
  elsif TG_OP = 'DELETE' then
    old_row := to_jsonb(OLD);
    row_image := old_row;
  else
    old_row := to_jsonb(OLD);
    new_row := to_jsonb(NEW);
    row_image := new_row;
    select coalesce(array_agg(n.key order by n.key), '{}') into changed_cols
      from jsonb_each(new_row) n
      where old_row -> n.key is distinct from n.value;
    if cardinality(changed_cols) = 0 and TG_ARGV[2] <> 'noop' then
      return null;
    end if;
  end if;

  actor := nullif(current_setting('observers.actor', true), '');
  if actor is null and TG_ARGV[1] <> '' then
    actor := nullif(current_setting(TG_ARGV[1], true), '');
  end if;

  insert into observers.change_log (event, entity, entity_id, before, after, changed, tenant_id, actor_id, traceparent)
  values (
    TG_OP,
    TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME,
    case when cardinality(key_cols) = 1 then row_image ->> key_cols[1]
         else (select jsonb_agg(row_image -> k order by o)::text from unnest(key_cols) with ordinality as u(k, o))
    end,
    old_row,
    new_row,
    changed_cols,
    case when TG_ARGV[0] <> '' then row_image ->> TG_ARGV[0] end,
    actor,
    nullif(current_setting('observers.traceparent', true), '')
  )
  returning seq into captured;
  insert into observers.change_pending (seq) values (captured);
  -- Wake the dispatcher only when it sleeps: it then holds the lock exclusively and this try
  -- fails. Otherwise the shared lock taken here, held until this transaction ends, keeps it
  -- from going to sleep before it has claimed this change. Identical notifications within one
  -- transaction are folded into one by Postgres: a bulk statement wakes it once, at commit.
  if not pg_try_advisory_xact_lock_shared(7311902116) then
    perform pg_notify('observers_change_log', '');
  end if;
  return null;
end
$$;
