-- Console history (docs/ui.md): what the console charts and counts, read from the database so
-- it is the same in every worker and survives restarts.
--
-- 1. observers.backlog_samples: the dispatch backlog and the age of its oldest change, one row
--    per 15-second bucket. Every worker serving the console samples; the first to reach a bucket
--    writes it and the others find it taken, so no leader is needed. Kept for a day.
-- 2. observers.deliveries.duration_ms: how long the last settled attempt of a delivery took, for
--    the observers page's cluster-wide p50/p95. Null on rows written before this migration.

create table observers.backlog_samples (
  at timestamptz primary key,
  backlog bigint not null,
  oldest_seconds int not null
);

alter table observers.deliveries add column duration_ms int;
