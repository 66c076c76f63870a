function block_destination(rate_key text, until timestamp with time zone) returns void body md5 d9660066437efc080ff095e81b7f67e6
function capture() returns trigger body md5 4718a2af80b55a3ab9fc8b897898f83c
function capture_mode(target regclass) returns text body md5 683c4d4975eb70ee7f245ad093bfe9a7
function capture_statement() returns trigger body md5 99478eb8bbe784c7080e028d13c65088
function change_key_hash(entity text, entity_id text) returns integer body md5 baffe8151f16c2e41f8700fe15a0b9d4
function close_breaker(destination text) returns boolean body md5 edebf38a9f50cc6b42a7f40b215733fd
function default_timeout_ms(action_type text) returns integer body md5 98f898bd6f3ee39a0d31532da6335d47
function drop_capture_triggers(target regclass) returns void body md5 c3e696c61727559857a01cabdb5d84c5
function end_rate_grant(id bigint) returns void body md5 6516e8f4b811103cd73a05fd702bc02e
function entity_name(schema_name text, table_name text) returns text body md5 683f7725ecafaad02336e6a1ace22c1e
function fetch_plain(queue text, batch_size integer) returns TABLE(id uuid, data jsonb, "retryCount" integer) body md5 f92364eb9b31cb03c30f219fc160aff6
function pause_observer(name text) returns boolean body md5 eae447aadc25c3e04a3542e833504ca7
function pending_key_hash() returns trigger body md5 3a8595525431f40dd83bc86e5ac99c13
function queue_jobs(of_queue text DEFAULT NULL::text, in_state text DEFAULT NULL::text) returns TABLE(id uuid, queue text, state text, data jsonb, created_on timestamp with time zone, completed_on timestamp with time zone, start_after timestamp with time zone, source_queue text, source_id uuid) body md5 17a6f641e72595d8bd9707c4e1996e92
function requeue_dead_letters(observer text DEFAULT NULL::text, action_type text DEFAULT NULL::text, entity text DEFAULT NULL::text, since timestamp with time zone DEFAULT NULL::timestamp with time zone, until timestamp with time zone DEFAULT NULL::timestamp with time zone, ids uuid[] DEFAULT NULL::uuid[], max_rows integer DEFAULT NULL::integer) returns TABLE(id uuid, job_id uuid) body md5 36aacfd16f80c1aa16737c57b67fe417
function resume_observer(name text) returns boolean body md5 93b68598c770e8653588df97b1fefeee
function retry_dead_letter(id uuid) returns boolean body md5 440a031d248c86089ee2b9341fd1b696
function retry_dead_letters(observer text DEFAULT NULL::text, since interval DEFAULT NULL::interval, action_type text DEFAULT NULL::text, entity text DEFAULT NULL::text, ids uuid[] DEFAULT NULL::uuid[]) returns integer body md5 274c5b526735515ee4c441afbb18b907
function rewatch() returns SETOF text body md5 ec221648c29c69eca0bedf4f1c6d1e75
function take_rate_slot(rate_key text, rate_limit integer, period_ms integer, hold_ms integer) returns TABLE(grant_id bigint, wait_until timestamp with time zone) body md5 8c2c3e01afd8087b0cfa981499cde3bb
function unwatch(target regclass) returns void body md5 e36d4e1661364fae914e0418247e1b09
function watch(target regclass, tenant_column text DEFAULT NULL::text, actor_setting text DEFAULT 'request.jwt.claim.sub'::text, noop_updates boolean DEFAULT false) returns void body md5 5b8e3c4cde4bf0d2258f43af2a37ee18
index CREATE INDEX change_log_created_at ON observers.change_log USING btree (created_at)
index CREATE INDEX deliveries_entity ON observers.deliveries USING btree (entity, entity_id)
index CREATE INDEX deliveries_last_attempt ON observers.deliveries USING btree (last_attempt_at)
index CREATE INDEX deliveries_observer_last_attempt ON observers.deliveries USING btree (observer, last_attempt_at)
index CREATE INDEX deliveries_seq ON observers.deliveries USING btree (seq)
index CREATE INDEX rate_grants_key_ends ON observers.rate_grants USING btree (key, ends_at)
index CREATE INDEX source_ledger_created_at ON observers.source_ledger USING btree (source, entry_created_at)
index CREATE UNIQUE INDEX backfills_pkey ON observers.backfills USING btree (id)
index CREATE UNIQUE INDEX backlog_samples_pkey ON observers.backlog_samples USING btree (at)
index CREATE UNIQUE INDEX breakers_pkey ON observers.breakers USING btree (destination)
index CREATE UNIQUE INDEX change_log_pkey ON observers.change_log USING btree (seq)
index CREATE UNIQUE INDEX change_pending_pkey ON observers.change_pending USING btree (seq)
index CREATE UNIQUE INDEX deliveries_pkey ON observers.deliveries USING btree (delivery_id)
index CREATE UNIQUE INDEX migrations_pkey ON observers.migrations USING btree (id)
index CREATE UNIQUE INDEX paused_pkey ON observers.paused USING btree (target)
index CREATE UNIQUE INDEX rate_grants_pkey ON observers.rate_grants USING btree (id)
index CREATE UNIQUE INDEX rate_limits_pkey ON observers.rate_limits USING btree (key)
index CREATE UNIQUE INDEX source_ledger_pkey ON observers.source_ledger USING btree (source, entry_key)
index CREATE UNIQUE INDEX source_progress_pkey ON observers.source_progress USING btree (source)
index CREATE UNIQUE INDEX watched_pkey ON observers.watched USING btree (entity)
relation backfills r: id bigint not null default nextval('observers.backfills_id_seq'::regclass), entity text not null, where_sql text, observers text[] not null, state text not null default 'running'::text, last_key jsonb, rows_done bigint not null default 0, rows_total bigint, page_size integer not null, pause_ms integer not null, error text, created_at timestamp with time zone not null default now(), updated_at timestamp with time zone not null default now(), finished_at timestamp with time zone
relation backlog_samples r: at timestamp with time zone not null, backlog bigint not null, oldest_seconds integer not null
relation breakers r: destination text not null, failures integer not null, opened_at timestamp with time zone, probe_at timestamp with time zone
relation change_log r: seq bigint not null identity, id uuid not null default gen_random_uuid(), event text not null, entity text not null, entity_id text not null, before jsonb, after jsonb, changed text[] not null default '{}'::text[], tenant_id text, actor_id text, traceparent text, txid xid8 not null default pg_current_xact_id(), created_at timestamp with time zone not null default now()
relation change_pending r: seq bigint not null, bytes bigint, key_hash integer
relation deliveries r: delivery_id text not null, observer text not null, action_index integer not null, event_id text not null, entity text not null, entity_id text not null, seq bigint not null, outcome text not null, attempts integer not null, first_attempt_at timestamp with time zone not null, last_attempt_at timestamp with time zone not null, delivered_at timestamp with time zone, last_error text, job_id uuid not null, job_attempt integer not null, duration_ms integer, output jsonb, last_error_code text
relation delivery_log v: delivery_id text, observer text, action_index integer, entity text, entity_id text, seq bigint, outcome text, attempts integer, first_attempt_at timestamp with time zone, last_attempt_at timestamp with time zone, delivered_at timestamp with time zone, last_error text, duration_ms integer, output jsonb, last_error_code text
relation dlq v: id uuid, observer text, action_type text, action_index integer, delivery_id text, event_id uuid, event text, entity text, entity_id text, last_error text, last_error_code text, attempts integer, failed_at timestamp with time zone, source_queue text, source_id uuid
relation migrations r: id integer not null, name text not null, applied_at timestamp with time zone not null default now(), breaking boolean not null default false
relation paused r: target text not null, paused_at timestamp with time zone not null default now()
relation pending_retries v: id uuid, queue text, observer text, action_index integer, delivery_id text, entity text, entity_id text, failed_attempts integer, last_error text, next_attempt_at timestamp with time zone
relation rate_grants r: id bigint not null identity, key text not null, granted_at timestamp with time zone not null default now(), ends_at timestamp with time zone not null
relation rate_limits r: key text not null, blocked_until timestamp with time zone, next_slot_at timestamp with time zone
relation recent_failures v: job_id uuid, queue text, observer text, action_index integer, delivery_id text, entity text, entity_id text, attempt integer, code text, error text, failed_at timestamp with time zone
relation retry_exhausted v: id uuid, queue text, observer text, action_index integer, delivery_id text, entity text, entity_id text, attempts integer, last_error text, failed_at timestamp with time zone
relation source_ledger r: source text not null, entry_key text not null, entry_created_at timestamp with time zone not null, malformed boolean not null default false, dispatched_at timestamp with time zone not null default now()
relation source_progress r: source text not null, floor timestamp with time zone not null, updated_at timestamp with time zone not null default now()
relation watched r: entity text not null, relid oid not null, tenant_column text, key_columns text[] not null, noop_updates boolean not null default false, watched_at timestamp with time zone not null default now(), capture text not null default 'row'::text
