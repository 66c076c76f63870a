-- Run-time control shared by every worker of the database (docs/observers.md, "Pausing").
--
-- observers.paused holds what is paused: an observer by name, or one action of it as
-- name#index. A worker fetching a job of a paused target puts it back to wait, without spending
-- an attempt; resuming lets the waiting jobs run again, oldest first. Workers read the table
-- every 2 s and on NOTIFY observers_control, so the state survives restarts and holds cluster-wide.

create table observers.paused (
  target text primary key check (target ~ '^[^#]+(#[0-9]+)?$'),
  paused_at timestamptz not null default now()
);

create function observers.pause_observer(name text) returns boolean
language plpgsql as $$
declare
  added boolean;
begin
  insert into observers.paused (target) values (name) on conflict do nothing;
  added := found;
  perform pg_notify('observers_control', 'paused');
  return added;
end
$$;

create function observers.resume_observer(name text) returns boolean
language plpgsql as $$
declare
  removed boolean;
begin
  delete from observers.paused where target = name;
  removed := found;
  perform pg_notify('observers_control', 'resumed');
  return removed;
end
$$;

-- observers.breakers counts consecutive failed attempts per destination (the key max_concurrency
-- uses: action type and host, say). After OBSERVERS_BREAKER_FAILURES in a row the destination is
-- open (opened_at set): its deliveries wait without spending attempts, and one attempt, the probe,
-- goes through once probe_at has passed. A success deletes the row, which closes it.

create table observers.breakers (
  destination text primary key,
  failures int not null,
  opened_at timestamptz,
  probe_at timestamptz
);

create function observers.close_breaker(destination text) returns boolean
language plpgsql as $$
declare
  removed boolean;
begin
  delete from observers.breakers b where b.destination = close_breaker.destination;
  removed := found;
  perform pg_notify('observers_control', 'closed');
  return removed;
end
$$;
