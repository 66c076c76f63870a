-- The durable change log written by the capture trigger, one row per captured row change.
--
--   captured ──(dispatcher claims, enqueues jobs, same transaction)──► dispatched ──(retention)──► deleted
--   dispatched_at IS NULL                                              dispatched_at IS NOT NULL
create table observers.change_log (
  seq bigint generated always as identity primary key,
  id uuid not null default gen_random_uuid(),
  event text not null check (event in ('INSERT', 'UPDATE', 'DELETE')),
  entity text not null,
  entity_id text not null,
  before jsonb,
  after jsonb,
  changed text[] not null default '{}',
  tenant_id text,
  actor_id text,
  traceparent text,
  txid xid8 not null default pg_current_xact_id(),
  created_at timestamptz not null default now(),
  dispatched_at timestamptz
);

create index change_log_undispatched on observers.change_log (seq) where dispatched_at is null;
create index change_log_created_at on observers.change_log (created_at);

-- Tables the capture trigger is attached to, with the arguments it was attached with.
create table observers.watched (
  entity text primary key,
  relid oid not null,
  tenant_column text,
  key_columns text[] not null,
  noop_updates boolean not null default false,
  watched_at timestamptz not null default now()
);

-- Trigger arguments: tenant column ('' for none), actor fallback setting ('' for none),
-- 'noop' or '' (capture updates that change nothing), then the primary-key columns.
create function observers.capture() returns trigger
language plpgsql as $$
declare
  old_row jsonb;
  new_row jsonb;
  row_image jsonb;
  changed_cols text[] := '{}';
  key_cols text[] := TG_ARGV[3:];
  actor text;
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
  );
  -- Identical notifications within one transaction are folded into one by Postgres,
  -- so a bulk statement still wakes the dispatcher once, at commit.
  perform pg_notify('observers_change_log', '');
  return null;
end
$$;

create function observers.watch(
  target regclass,
  tenant_column text default null,
  actor_setting text default 'request.jwt.claim.sub',
  noop_updates boolean default false
) returns void
language plpgsql as $$
declare
  key_cols text[];
  entity_name text;
  args text;
begin
  select array_agg(a.attname::text order by k.ord) into key_cols
    from pg_index i
    cross join lateral unnest(i.indkey::int2[]) with ordinality as k(attnum, ord)
    join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
   where i.indrelid = target and i.indisprimary;
  if key_cols is null then
    raise exception 'observers.watch: table % has no primary key', target
      using errcode = 'invalid_table_definition', hint = 'Add a primary key: it becomes the event''s entity_id.';
  end if;
  if tenant_column is not null and not exists (
    select 1 from pg_attribute where attrelid = target and attname = tenant_column and attnum > 0 and not attisdropped
  ) then
    raise exception 'observers.watch: table % has no column %', target, quote_ident(tenant_column)
      using errcode = 'undefined_column';
  end if;

  select n.nspname || '.' || c.relname into entity_name
    from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = target;
  select string_agg(quote_literal(a), ', ') into args
    from unnest(array[coalesce(tenant_column, ''), coalesce(actor_setting, ''),
                      case when noop_updates then 'noop' else '' end] || key_cols) as a;

  execute format('drop trigger if exists observers_capture on %s', target);
  execute format(
    'create trigger observers_capture after insert or update or delete on %s for each row execute function observers.capture(%s)',
    target, args);

  insert into observers.watched (entity, relid, tenant_column, key_columns, noop_updates)
  values (entity_name, target, tenant_column, key_cols, noop_updates)
  on conflict (entity) do update
    set relid = excluded.relid, tenant_column = excluded.tenant_column,
        key_columns = excluded.key_columns, noop_updates = excluded.noop_updates, watched_at = now();
end
$$;

create function observers.unwatch(target regclass) returns void
language plpgsql as $$
begin
  execute format('drop trigger if exists observers_capture on %s', target);
  delete from observers.watched where relid = target;
end
$$;
