-- Progress of the sources other than observers.change_log (docs/sources.md). Their change logs
-- belong to someone else (or live in another database), so what was dispatched is kept here.
--
-- An entry is dispatched once its key is in source_ledger, written in the same transaction as
-- its jobs. Identities are allocated at INSERT and become visible at COMMIT, so "key greater than
-- the last seen" would skip late committers; instead each pass reads every entry created after
-- the source's floor that is not in the ledger.
--
--   floor ◄── commit window ──► read time
--   ───────┼──────────────────────┼──► entry created_at (source clock)
--   all dispatched   anti-join against the ledger
create table observers.source_progress (
  source text primary key,
  -- Every entry with created_at <= floor that will ever become visible has been dispatched.
  floor timestamptz not null,
  updated_at timestamptz not null default now()
);

create table observers.source_ledger (
  source text not null,
  entry_key text not null,
  entry_created_at timestamptz not null,
  malformed boolean not null default false,
  dispatched_at timestamptz not null default now(),
  primary key (source, entry_key)
);

create index source_ledger_created_at on observers.source_ledger (source, entry_created_at);
