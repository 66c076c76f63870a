-- Partitioned dispatch (docs/architecture.md § Dispatch, docs/operations.md).
--
-- Several workers dispatch at once, each leading some of OBSERVERS_DISPATCH_PARTITIONS partitions.
-- A change belongs to partition key_hash mod N, where key_hash is a hash of its entity and
-- entity_id taken at capture: every change of one row shares a hash, so they all meet the same
-- dispatcher, in seq order. The hash, not the partition, is stored: N is the workers' setting and
-- may change without rewriting anything (a new N takes effect when the last worker with the old
-- one has stopped; src/dispatch/partitions.ts, docs/operations.md).
--
-- The capture function below fills key_hash. A trigger fills it for any other writer of
-- change_pending that leaves it out (an older or a different capture function): its WHEN clause
-- is checked without calling it, so captures that fill the column pay nothing for it.

alter table observers.change_pending add column key_hash int;

create function observers.change_key_hash(entity text, entity_id text) returns int
language sql immutable strict parallel safe as $$
  select hashtext(entity || '/' || entity_id)
$$;

update observers.change_pending p
   set key_hash = observers.change_key_hash(c.entity, c.entity_id)
  from observers.change_log c
 where c.seq = p.seq;

create function observers.pending_key_hash() returns trigger
language plpgsql as $$
begin
  select observers.change_key_hash(c.entity, c.entity_id) into new.key_hash
    from observers.change_log c where c.seq = new.seq;
  return new;
end
$$;

create trigger pending_key_hash before insert on observers.change_pending
  for each row when (new.key_hash is null) execute function observers.pending_key_hash();

create or replace function observers.capture() returns trigger
language plpgsql as $$
declare
  old_row jsonb;
  new_row jsonb;
  row_image jsonb;
  changed_cols text[] := '{}';
  key_cols text[] := TG_ARGV[3:];
  actor text;
  entity_name text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
  row_key text;
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

  -- Only names with a dot or a quote need quoting; checking here spares every other capture a call.
  if strpos(TG_TABLE_SCHEMA, '.') + strpos(TG_TABLE_NAME, '.') + strpos(entity_name, '"') > 0 then
    entity_name := observers.entity_name(TG_TABLE_SCHEMA, TG_TABLE_NAME);
  end if;

  actor := nullif(current_setting('observers.actor', true), '');
  if actor is null and TG_ARGV[1] <> '' then
    actor := nullif(current_setting(TG_ARGV[1], true), '');
  end if;

  row_key := case when cardinality(key_cols) = 1 then row_image ->> key_cols[1]
                  else (select jsonb_agg(row_image -> k order by o)::text
                          from unnest(key_cols) with ordinality as u(k, o))
             end;

  insert into observers.change_log (event, entity, entity_id, before, after, changed, tenant_id, actor_id, traceparent)
  values (
    TG_OP,
    entity_name,
    row_key,
    old_row,
    new_row,
    changed_cols,
    case when TG_ARGV[0] <> '' then row_image ->> TG_ARGV[0] end,
    actor,
    nullif(current_setting('observers.traceparent', true), '')
  )
  returning seq into captured;
  -- The images are still in memory, uncompressed: their size is what the dispatcher will load.
  insert into observers.change_pending (seq, bytes, key_hash)
  values (captured, coalesce(pg_column_size(old_row), 0) + coalesce(pg_column_size(new_row), 0),
          hashtext(entity_name || '/' || row_key)); -- observers.change_key_hash, inlined
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
