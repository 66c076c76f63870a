-- Three changes to capture (docs/reliability.md, docs/database.md).
--
-- 1. Every undispatched change carries the size of its row images. The dispatcher bounds each
--    batch by bytes as well as rows, and dead-letters a change above OBSERVERS_MAX_CHANGE_BYTES
--    without reading it, so it must know sizes before it loads any image. The size is taken at
--    capture, uncompressed: pg_column_size of a stored image is its compressed size, and a
--    50 MB image of one repeated character stores in well under 1 MB. Changes captured before
--    this migration get their stored size, the best there is without reading them.
--
-- 2. Entity names are unambiguous: a schema or table name holding a dot or a double quote is
--    quoted as quote_ident quotes it, so schema "a.b" table c is "a.b".c and schema a table
--    "b.c" is a."b.c". Every other name is written as before (public.orders stays public.orders).
--
-- 3. Tables of pg-observers itself (schemas observers and pgboss) cannot be watched: capturing
--    the change log's own writes recursed until "stack depth limit exceeded" failed every write
--    to every watched table.

alter table observers.change_pending add column bytes bigint;

update observers.change_pending p
   set bytes = coalesce(pg_column_size(c.before), 0) + coalesce(pg_column_size(c.after), 0)
  from observers.change_log c
 where c.seq = p.seq;

create function observers.entity_name(schema_name text, table_name text) returns text
language sql immutable strict as $$
  select case when strpos(schema_name, '.') > 0 or strpos(schema_name, '"') > 0
              then '"' || replace(schema_name, '"', '""') || '"' else schema_name end
      || '.'
      || case when strpos(table_name, '.') > 0 or strpos(table_name, '"') > 0
              then '"' || replace(table_name, '"', '""') || '"' else table_name end
$$;

update observers.watched w
   set entity = observers.entity_name(n.nspname, c.relname)
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.oid = w.relid and w.entity <> observers.entity_name(n.nspname, c.relname);

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

  insert into observers.change_log (event, entity, entity_id, before, after, changed, tenant_id, actor_id, traceparent)
  values (
    TG_OP,
    entity_name,
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
  -- The images are still in memory, uncompressed: their size is what the dispatcher will load.
  insert into observers.change_pending (seq, bytes)
  values (captured, coalesce(pg_column_size(old_row), 0) + coalesce(pg_column_size(new_row), 0));
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

create or replace function observers.watch(
  target regclass,
  tenant_column text default null,
  actor_setting text default 'request.jwt.claim.sub',
  noop_updates boolean default false
) returns void
language plpgsql as $$
declare
  key_cols text[];
  entity_name text;
  schema_name text;
  args text;
begin
  select n.nspname, observers.entity_name(n.nspname, c.relname) into schema_name, entity_name
    from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = target;
  if schema_name in ('observers', 'pgboss') then
    raise exception 'observers.watch: table % belongs to pg-observers itself and cannot be watched', target
      using errcode = 'invalid_parameter_value';
  end if;

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
