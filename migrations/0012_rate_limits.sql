-- Rate limits per destination, shared by every worker (docs/observers.md, "Rate limits").
--
-- observers.rate_grants holds one row per delivery let go under a rate_limit, keyed by the
-- action's rate key (its destination, or its rendered rate_limit.key). ends_at is the last
-- moment its request may have reached the destination: the attempt's time limit while it runs,
-- then the moment it ended. A key may let a delivery go only while fewer than `limit` of its
-- grants ended within the last period, so any period-long window at the receiver sees at most
-- `limit` requests, whatever the network's delay. A crashed worker's grant counts until its
-- time limit has passed.
--
-- observers.rate_limits holds per key: blocked_until, set from a 429's Retry-After so every
-- worker waits, and next_slot_at, the time handed to the last delivery that had to wait, so
-- waiting deliveries come back one slot (period / limit) apart rather than all at once. A
-- delivery that comes back to no free slot (the guess was early) waits again.

create table observers.rate_limits (
  key text primary key,
  blocked_until timestamptz,
  next_slot_at timestamptz
);

create table observers.rate_grants (
  id bigint generated always as identity primary key,
  key text not null,
  granted_at timestamptz not null default now(),
  ends_at timestamptz not null
);

create index rate_grants_key_ends on observers.rate_grants (key, ends_at);

-- Lets one delivery of `rate_key` go now (returns its grant id) or says when to try again
-- (returns wait_until). The key's row is locked, so grants of one key are decided one at a time
-- across every worker.
create function observers.take_rate_slot(rate_key text, rate_limit int, period_ms int, hold_ms int)
returns table (grant_id bigint, wait_until timestamptz)
language plpgsql as $$
declare
  period interval := period_ms * interval '1 millisecond';
  r observers.rate_limits;
  used int;
  free_at timestamptz;
  granted bigint;
begin
  -- The key's row stays locked until commit; not waiting for the WAL flush keeps that short
  -- (grants are serialised per key). A database crash may forget the last grants' rows.
  perform set_config('synchronous_commit', 'off', true);
  insert into observers.rate_limits (key) values (rate_key) on conflict do nothing;
  select * into r from observers.rate_limits l where l.key = rate_key for update;
  delete from observers.rate_grants g where g.key = rate_key and g.ends_at <= now() - period;
  if r.blocked_until is not null and r.blocked_until > now() then
    free_at := r.blocked_until;
  else
    select count(*) into used from observers.rate_grants g where g.key = rate_key;
    if used < rate_limit then
      insert into observers.rate_grants (key, ends_at)
      values (rate_key, now() + hold_ms * interval '1 millisecond')
      returning id into granted;
      return query select granted, null::timestamptz;
      return;
    end if;
    -- A slot frees when enough grants age out of the period: the (used - limit + 1)th to end.
    -- A request still running is taken to end now: a guess, cheap when wrong (the delivery
    -- asks again), where its time limit would park it for seconds behind a 20 ms request.
    select least(g.ends_at, now()) + period into free_at from observers.rate_grants g
     where g.key = rate_key order by least(g.ends_at, now()) offset used - rate_limit limit 1;
  end if;
  free_at := greatest(free_at, r.next_slot_at);
  update observers.rate_limits l set next_slot_at = free_at + period / rate_limit where l.key = rate_key;
  return query select null::bigint, free_at;
end
$$;

-- Marks a grant's request as ended now: the window it counts in starts to close.
create function observers.end_rate_grant(id bigint) returns void
language plpgsql as $$
begin
  -- Losing this to a crash only keeps the grant counting until its time limit.
  perform set_config('synchronous_commit', 'off', true);
  update observers.rate_grants g set ends_at = now() where g.id = end_rate_grant.id;
end
$$;

-- A destination answered 429 with Retry-After: every worker holds its deliveries until then.
create function observers.block_destination(rate_key text, until timestamptz) returns void
language plpgsql as $$
begin
  insert into observers.rate_limits as l (key, blocked_until) values (rate_key, until)
  on conflict (key) do update set blocked_until = greatest(l.blocked_until, excluded.blocked_until);
  perform pg_notify('observers_control', 'blocked');
end
$$;
