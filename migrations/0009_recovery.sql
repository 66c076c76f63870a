-- Recovery: a delivery record, and the state of backfills (docs/database.md).
--
-- 1. observers.deliveries keeps one row per delivery_id: its last outcome, how many attempts were
--    settled, when, and whether it was ever delivered. pg-boss deletes finished jobs after days;
--    this record lasts as long as the change log (OBSERVERS_RETENTION_DAYS), so replay can skip
--    what receivers already acknowledged and operators can ask what happened to a change.
-- 2. observers.backfills keeps each backfill's progress (the last primary key read), so a
--    backfill stopped or crashed resumes from where it was.

create table observers.deliveries (
  delivery_id text primary key,
  observer text not null,
  action_index int not null,
  event_id text not null,
  entity text not null,
  entity_id text not null,
  seq bigint not null,
  outcome text not null check (outcome in ('delivered', 'retrying', 'dead_lettered', 'given_up')),
  attempts int not null,
  first_attempt_at timestamptz not null,
  last_attempt_at timestamptz not null,
  -- First successful attempt; kept when a later replay of the same delivery fails.
  delivered_at timestamptz,
  last_error text,
  -- The job and attempt the outcome comes from: a late settlement of an earlier attempt of the
  -- same job cannot overwrite the outcome of a later one.
  job_id uuid not null,
  job_attempt int not null
);

create index deliveries_observer_last_attempt on observers.deliveries (observer, last_attempt_at);
create index deliveries_entity on observers.deliveries (entity, entity_id);
create index deliveries_last_attempt on observers.deliveries (last_attempt_at);
-- Replay finds what a page of changes already delivered by a range of seqs.
create index deliveries_seq on observers.deliveries (seq);

-- The record as operators read it in psql, newest first.
create view observers.delivery_log as
  select delivery_id, observer, action_index, entity, entity_id, seq, outcome, attempts,
         first_attempt_at, last_attempt_at, delivered_at, last_error
    from observers.deliveries
   order by last_attempt_at desc;

create table observers.backfills (
  id bigserial primary key,
  entity text not null,
  where_sql text,
  observers text[] not null,
  state text not null default 'running' check (state in ('running', 'stopped', 'done', 'failed')),
  -- Primary-key values of the last row read, as a JSON array; null before the first page.
  last_key jsonb,
  rows_done bigint not null default 0,
  rows_total bigint,
  page_size int not null,
  pause_ms int not null,
  error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz
);
