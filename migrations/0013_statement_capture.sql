-- Statement-level capture (docs/database.md, docs/performance.md).
--
-- The row-level trigger ran a PL/pgSQL function, two single-row INSERTs and an advisory-lock try
-- for every changed row: about 45 µs a row, 4.5 s of a 100 000-row UPDATE. Statement-level
-- triggers with transition tables (REFERENCING OLD TABLE … NEW TABLE) see every row a statement
-- changed at once and write them with one set-based INSERT into change_log and one into
-- change_pending, and try the lock (or NOTIFY) once per statement.
--
-- Postgres allows a transition table on a trigger for one event only, so a table gets three
-- triggers, observers_capture_insert, _update and _delete. A table keeps the row-level trigger
-- observers_capture where a statement-level trigger would miss rows or cannot be created:
--   - partitions and inheritance children: a statement that names the parent fires only the
--     parent's statement-level triggers, never a child's;
--   - partitioned and inheritance parents: a statement that names a child directly fires only
--     that child's statement-level triggers, never the parent's;
--   - foreign tables, which cannot have transition tables.
-- observers.capture_mode(table) makes that choice; observers.watched.capture records the one
-- installed, and every table watched before this migration is watched again here.

alter table observers.watched
  add column capture text not null default 'row' check (capture in ('row', 'statement'));

create function observers.capture_mode(target regclass) returns text
language sql stable as $$
  select case
    when c.relkind <> 'r' or c.relispartition
      or exists (select 1 from pg_inherits i where i.inhrelid = c.oid or i.inhparent = c.oid)
    then 'row' else 'statement' end
  from pg_class c
  where c.oid = target
$$;

-- Trigger arguments as observers.capture's: tenant column ('' for none), actor fallback setting
-- ('' for none), 'noop' or '', then the primary-key columns. The transition tables are named
-- old_rows and new_rows; the UPDATE trigger pairs them by position, which is how Postgres
-- appends them (one old and one new row per updated row). Rows are logged in the order the
-- statement changed them, the order in which the row-level trigger fired.
create function observers.capture_statement() returns trigger
language plpgsql as $$
declare
  key_cols text[] := TG_ARGV[3:];
  single_key text := case when cardinality(TG_ARGV) = 4 then TG_ARGV[3] end;
  tenant_col text := nullif(TG_ARGV[0], '');
  keep_noop boolean := TG_ARGV[2] = 'noop';
  actor text;
  trace text := nullif(current_setting('observers.traceparent', true), '');
  entity_name text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
  captured bigint;
begin
  -- Only names with a dot or a quote need quoting; checking here spares every other capture a call.
  if strpos(TG_TABLE_SCHEMA, '.') + strpos(TG_TABLE_NAME, '.') + strpos(entity_name, '"') > 0 then
    entity_name := observers.entity_name(TG_TABLE_SCHEMA, TG_TABLE_NAME);
  end if;

  actor := nullif(current_setting('observers.actor', true), '');
  if actor is null and TG_ARGV[1] <> '' then
    actor := nullif(current_setting(TG_ARGV[1], true), '');
  end if;

  -- Rows are turned into images with to_jsonb(n.*): a bare n would name a column n if the table
  -- has one.
  -- The byte size is taken from RETURNING, which sees the images as stored but before TOAST
  -- compresses them: what the dispatcher will load (migration 0007). A short image carries a
  -- 1-byte header there, so it counts 3 bytes less than observers.capture counts it.
  if TG_OP = 'INSERT' then
    with logged as (
      insert into observers.change_log (event, entity, entity_id, before, after, changed, tenant_id, actor_id, traceparent)
      select 'INSERT', entity_name,
             coalesce(i.image ->> single_key,
                      (select jsonb_agg(i.image -> k order by o)::text from unnest(key_cols) with ordinality as u(k, o))),
             null, i.image, '{}', i.image ->> tenant_col, actor, trace
        from (select to_jsonb(n.*) as image from new_rows n) i
      returning seq, entity, entity_id, pg_column_size(after) as bytes
    )
    insert into observers.change_pending (seq, bytes, key_hash)
    select seq, bytes, hashtext(entity || '/' || entity_id) from logged; -- observers.change_key_hash, inlined
  elsif TG_OP = 'DELETE' then
    with logged as (
      insert into observers.change_log (event, entity, entity_id, before, after, changed, tenant_id, actor_id, traceparent)
      select 'DELETE', entity_name,
             coalesce(d.image ->> single_key,
                      (select jsonb_agg(d.image -> k order by o)::text from unnest(key_cols) with ordinality as u(k, o))),
             d.image, null, '{}', d.image ->> tenant_col, actor, trace
        from (select to_jsonb(o.*) as image from old_rows o) d
      returning seq, entity, entity_id, pg_column_size(before) as bytes
    )
    insert into observers.change_pending (seq, bytes, key_hash)
    select seq, bytes, hashtext(entity || '/' || entity_id) from logged; -- observers.change_key_hash, inlined
  else
    with logged as (
      insert into observers.change_log (event, entity, entity_id, before, after, changed, tenant_id, actor_id, traceparent)
      select 'UPDATE', entity_name,
             coalesce(p.after ->> single_key,
                      (select jsonb_agg(p.after -> k order by o)::text from unnest(key_cols) with ordinality as u(k, o))),
             p.before, p.after, c.changed, p.after ->> tenant_col, actor, trace
        from rows from (unnest(array(select to_jsonb(o.*) from old_rows o)),
                        unnest(array(select to_jsonb(n.*) from new_rows n))) as p(before, after)
        cross join lateral (
          select coalesce(array_agg(e.key order by e.key), '{}') as changed
            from jsonb_each(p.after) e
           where p.before -> e.key is distinct from e.value
        ) c
       where keep_noop or c.changed <> '{}'
      returning seq, entity, entity_id, pg_column_size(before) + pg_column_size(after) as bytes
    )
    insert into observers.change_pending (seq, bytes, key_hash)
    select seq, bytes, hashtext(entity || '/' || entity_id) from logged; -- observers.change_key_hash, inlined
  end if;
  get diagnostics captured = row_count;
  if captured = 0 then
    return null;
  end if;

  -- As observers.capture (migration 0004): notify only while the dispatcher sleeps. One try per
  -- statement instead of one per row.
  if not pg_try_advisory_xact_lock_shared(7311902116) then
    perform pg_notify('observers_change_log', '');
  end if;
  return null;
end
$$;

-- Both kinds, so a table whose capture mode changed does not keep the other kind as well.
create function observers.drop_capture_triggers(target regclass) returns void
language plpgsql as $$
declare
  name text;
begin
  for name in
    select tgname from pg_trigger
     where tgrelid = target
       and tgname in ('observers_capture', 'observers_capture_insert', 'observers_capture_update', 'observers_capture_delete')
  loop
    execute format('drop trigger %I on %s', name, target);
  end loop;
end
$$;

create or replace function observers.unwatch(target regclass) returns void
language plpgsql as $$
begin
  perform observers.drop_capture_triggers(target);
  delete from observers.watched where relid = target;
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
  mode text := observers.capture_mode(target);
begin
  -- Workers starting together may watch one table at once: one at a time, or the second's
  -- create trigger meets the first's (lock class 731190215, src/db/locks.ts).
  perform pg_advisory_xact_lock(731190215, target::oid::int);
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

  perform observers.drop_capture_triggers(target);
  if mode = 'statement' then
    execute format(
      'create trigger observers_capture_insert after insert on %s referencing new table as new_rows'
      ' for each statement execute function observers.capture_statement(%s)', target, args);
    execute format(
      'create trigger observers_capture_update after update on %s referencing old table as old_rows new table as new_rows'
      ' for each statement execute function observers.capture_statement(%s)', target, args);
    execute format(
      'create trigger observers_capture_delete after delete on %s referencing old table as old_rows'
      ' for each statement execute function observers.capture_statement(%s)', target, args);
  else
    execute format(
      'create trigger observers_capture after insert or update or delete on %s for each row execute function observers.capture(%s)',
      target, args);
  end if;

  insert into observers.watched (entity, relid, tenant_column, key_columns, noop_updates, capture)
  values (entity_name, target, tenant_column, key_cols, noop_updates, mode)
  on conflict (entity) do update
    set relid = excluded.relid, tenant_column = excluded.tenant_column, key_columns = excluded.key_columns,
        noop_updates = excluded.noop_updates, capture = excluded.capture, watched_at = now();
end
$$;

-- Watches again, with the arguments its trigger was created with, every watched table whose
-- trigger is not the kind observers.capture_mode now chooses: every table watched before this
-- migration, and a table that became a partition, a parent or a child since it was watched.
-- `observers migrate` calls it after migrating. A table this role may not alter keeps the
-- trigger it has, which still captures every change, until its owner runs `observers watch` or
-- `observers migrate`. Returns the entities watched again.
create function observers.rewatch() returns setof text
language plpgsql as $$
declare
  w record;
  args bytea;
  cut int;
  actor_setting text;
begin
  for w in
    select wt.entity, wt.relid, wt.tenant_column, wt.noop_updates, t.tgargs
      from observers.watched wt
      cross join lateral (
        select tgargs from pg_trigger
         where tgrelid = wt.relid and tgname in ('observers_capture', 'observers_capture_update')
         order by tgname limit 1
      ) t
     where wt.capture is distinct from observers.capture_mode(wt.relid)
        or not exists (select 1 from pg_trigger
                        where tgrelid = wt.relid
                          and tgname = case wt.capture when 'row' then 'observers_capture' else 'observers_capture_update' end)
     order by wt.entity
  loop
    -- tgargs holds each argument followed by a zero byte; the actor setting is the second.
    args := w.tgargs;
    cut := position('\x00'::bytea in args);
    args := substring(args from cut + 1);
    cut := position('\x00'::bytea in args);
    actor_setting := convert_from(substring(args from 1 for cut - 1), 'UTF8');
    begin
      perform observers.watch(w.relid::regclass, w.tenant_column, nullif(actor_setting, ''), w.noop_updates);
      return next w.entity;
    exception when insufficient_privilege then
      raise warning 'observers: % keeps its % capture trigger: %', w.entity,
        (select capture from observers.watched where entity = w.entity), sqlerrm
        using hint = 'Run `observers watch` or `observers migrate` as the table''s owner.';
    end;
  end loop;
end
$$;

select observers.rewatch();
