import { createHash } from 'node:crypto'
import type { NamedStatement } from '../db/statements.ts'

/**
 * The statements on `pgboss.*` that pg-boss's API cannot express. Each is fenced on the attempt
 * (`retry_count`) and on `state = 'active'`, reports whether it settled the job, and is pinned
 * by test/queue/pgboss-contract.test.ts against the exact pg-boss version in package.json.
 */

export const bossSchema = 'pgboss'

const appendAttempt = `data = jsonb_set(data, '{attempts}', coalesce(data -> 'attempts', '[]'::jsonb) || jsonb_build_array($5::jsonb))`

/**
 * Puts an active job back to `retry`, due in $4 milliseconds (pg-boss's own retry delay counts
 * whole seconds). The row stays where it is, so a strict-FIFO key stays held while it waits;
 * its next fetch counts the next attempt. keep_until moves with it: retention counts from the
 * last time the job was due, never from its first insert.
 */
export const scheduleRetry: NamedStatement = {
  name: 'observers_schedule_retry',
  text: `
  update ${bossSchema}.job
     set state = 'retry',
         start_after = now() + $4::double precision * interval '1 millisecond',
         keep_until = greatest(keep_until, now() + $6::int * interval '1 second'),
         output = $5::jsonb,
         ${appendAttempt}
   where name = $1 and id = $2 and retry_count = $3 and state = 'active'
  returning id`,
}

/**
 * Puts an active job back to `retry`, due now, without spending an attempt: pg-boss counts an
 * attempt when it fetches a job that has started before, so the count steps back one first.
 * For attempts cut short by shutdown, which are no verdict on the delivery.
 */
export const requeueAttempt: NamedStatement = {
  name: 'observers_requeue_attempt',
  text: `
  update ${bossSchema}.job
     set state = 'retry',
         start_after = now(),
         retry_count = retry_count - 1,
         keep_until = greatest(keep_until, now() + $4::int * interval '1 second'),
         output = $5::jsonb,
         ${appendAttempt}
   where name = $1 and id = $2 and retry_count = $3 and state = 'active'
  returning id`,
}

/** How far a paused delivery's start is put off: until a resume brings it forward. */
const pausedHorizon = `interval '100 years'`

/**
 * Puts an active job back to wait for its observer's resume, without spending an attempt (as
 * `requeueAttempt`), while one of the targets $4 is still paused. The paused row is locked
 * (FOR SHARE) so a resume committing meanwhile waits for this statement, then finds the job
 * held and releases it; a job whose target was resumed first is not held. A held job of a
 * strict-FIFO queue keeps its key, so its row's later changes wait behind it, in order.
 */
export const holdPaused: NamedStatement = {
  name: 'observers_hold_paused',
  text: `
  with p as (select target from observers.paused where target = any($4::text[]) for share)
  update ${bossSchema}.job
     set state = 'retry',
         start_after = now() + ${pausedHorizon},
         retry_count = retry_count - 1,
         keep_until = now() + ${pausedHorizon} + $5::int * interval '1 second',
         output = '{"held":"paused"}'::jsonb
   where name = $1 and id = $2 and retry_count = $3 and state = 'active' and exists (select 1 from p)
  returning id`,
}

/**
 * Brings forward every held job of a target no longer paused, due now in its original order
 * (pg-boss fetches by created_on, then id). Returns the queues it touched, to wake their runners.
 */
export const releasePaused: NamedStatement = {
  name: 'observers_release_paused',
  text: `
  update ${bossSchema}.job j
     set start_after = now(),
         keep_until = now() + $1::int * interval '1 second',
         output = null
   where j.name like 'observers.%' and j.state = 'retry' and j.output ->> 'held' = 'paused'
     and not exists (
       select 1 from observers.paused p
        where p.target in (j.data ->> 'observer', (j.data ->> 'observer') || '#' || (j.data ->> 'action_index')))
  returning j.name`,
}

/**
 * Puts an active job back to wait, without spending an attempt, while its destination $4 is
 * open: due when the next probe may go (`probe_at`). The breaker row is locked (FOR SHARE) so
 * a close committing meanwhile waits for this statement and then releases the job.
 */
export const holdForBreaker: NamedStatement = {
  name: 'observers_hold_for_breaker',
  text: `
  with b as (
    select probe_at from observers.breakers where destination = $4 and opened_at is not null for share)
  update ${bossSchema}.job
     set state = 'retry',
         start_after = greatest(now(), (select probe_at from b)),
         retry_count = retry_count - 1,
         keep_until = greatest(keep_until, now() + $5::int * interval '1 second'),
         output = jsonb_build_object('held', 'breaker', 'destination', $4::text)
   where name = $1 and id = $2 and retry_count = $3 and state = 'active' and exists (select 1 from b)
  returning id`,
}

/** Makes the jobs held for a destination no longer open due now. Returns their queues. */
export const releaseBreaker: NamedStatement = {
  name: 'observers_release_breaker',
  text: `
  update ${bossSchema}.job j
     set start_after = now(), output = null
   where j.name like 'observers.%' and j.state = 'retry' and j.output ->> 'held' = 'breaker'
     and j.output ->> 'destination' = any($1::text[])
     and not exists (
       select 1 from observers.breakers b where b.destination = j.output ->> 'destination' and b.opened_at is not null)
  returning j.name`,
}

/**
 * Puts an active job back to wait until $4, without spending an attempt (as `requeueAttempt`):
 * its rate key $6 is over its rate_limit or blocked by the destination's Retry-After.
 */
export const holdForRate: NamedStatement = {
  name: 'observers_hold_for_rate',
  text: `
  update ${bossSchema}.job
     set state = 'retry',
         start_after = $4::timestamptz,
         retry_count = retry_count - 1,
         keep_until = greatest(keep_until, $4::timestamptz + $5::int * interval '1 second'),
         output = jsonb_build_object('held', 'rate_limit', 'key', $6::text)
   where name = $1 and id = $2 and retry_count = $3 and state = 'active'
  returning id`,
}

/**
 * Makes pg-boss's `fail()` of this attempt terminal (no retry left) and keeps or drops the
 * dead-letter target, per the observer's on_failure. Run in the same transaction as `fail()`.
 */
export const markFinalAttempt: NamedStatement = {
  name: 'observers_mark_final_attempt',
  text: `
  update ${bossSchema}.job
     set retry_limit = retry_count,
         dead_letter = case when $4::boolean then dead_letter end,
         ${appendAttempt}
   where name = $1 and id = $2 and retry_count = $3 and state = 'active'
  returning id`,
}

/**
 * The table pg-boss keeps the jobs of every queue not created with `partition: true` in; pg-boss's
 * own fetch names it too, so the planner never goes through the partitioned parent.
 */
const jobTable = `${bossSchema}.job_common`

/** Waiting jobs `fetchOrdered` walks at most (~10 µs each) before it leaves the rest to pg-boss's fetch. */
export const orderedWalk = 1000

/**
 * Fetches up to $2 jobs of the strict-FIFO queue $1 as pg-boss's fetch does (same choice, same
 * claim, same columns), at a cost that follows what it takes: it walks the queue's due jobs in
 * fetch order (job_i11) and keeps a job only when it heads its key, probing the key's held job
 * (job_i8: active, retry or failed; a retry heads its key) and its earlier created siblings
 * (job_i10), where pg-boss first finds the head of every waiting key. The walk stops after $4
 * jobs: jobs of a key whose head cannot run are walked past one by one, so a key with many jobs
 * waiting ahead of the others would otherwise cost what it holds back on every fetch. The last
 * row returned is not a job: its `capped` says the walk stopped there, and the caller then
 * takes what lies beyond from pg-boss's own fetch (src/queue/runner.ts `fetchOrderedJobs`). A job with a group runs only
 * while its group's active jobs are under its tier's limit in $3 (tier name → limit), counted
 * as pg-boss's groupConcurrency does. Callers serialise the fetches of a queue (an advisory
 * lock), so the walk takes no row locks: the claim checks each job still waits.
 */
export const fetchOrdered: NamedStatement = {
  name: 'observers_fetch_ordered',
  text: `
  with active_groups as materialized (
    select coalesce(jsonb_object_agg(group_id, n), '{}'::jsonb) as counts
      from (select group_id, count(*)::int as n from ${jobTable}
             where name = $1 and state = 'active' and group_id is not null group by group_id) g
  ),
  walked as (
    select j.id, j.group_id, j.group_tier, j.priority, j.created_on,
           -- OFFSET 0 keeps this a probe per candidate: as an anti join it reads every held key.
           not exists (
             select 1 from ${jobTable} b
              where b.name = $1 and b.singleton_key = j.singleton_key and b.policy = 'key_strict_fifo'
                and b.state in ('active', 'retry', 'failed') and b.id <> j.id
             offset 0)
           -- Its key's head as pg-boss picks it; the order is job_i10's, so the probe reads one entry.
           and j.id = (
             select h.id from ${jobTable} h
              where h.name = $1 and h.singleton_key = j.singleton_key and h.policy = 'key_strict_fifo'
                and h.state < 'active' and not h.blocked and h.start_after <= ${bossSchema}.job_now()
              order by h.state desc, h.created_on, h.id
              limit 1) as heads
      from ${jobTable} j
     where j.name = $1 and j.state < 'active' and not j.blocked and j.start_after <= ${bossSchema}.job_now()
     order by j.priority desc, j.created_on
     limit $4
  ),
  next as (
    select w.id, w.group_id, w.priority, w.created_on,
           coalesce(((select counts from active_groups) ->> w.group_id)::int, 0) as active_n,
           coalesce(($3::jsonb ->> w.group_tier)::int, 2147483647) as group_limit
      from walked w
     where w.heads
       and (w.group_id is null
            or coalesce(((select counts from active_groups) ->> w.group_id)::int, 0)
               < coalesce(($3::jsonb ->> w.group_tier)::int, 2147483647))
     limit $2
  ),
  taken as (
    select id from (
      select id, group_id, active_n, group_limit,
             row_number() over (partition by group_id order by priority desc, created_on) as group_n
        from next) ranked
     where group_id is null or active_n + group_n <= group_limit
  ),
  claimed as (
    update ${jobTable} j
       set state = 'active',
           started_on = ${bossSchema}.job_now(),
           heartbeat_on = ${bossSchema}.job_now(),
           retry_count = case when started_on is not null then retry_count + 1 else retry_count end
     where j.name = $1 and j.id = any (array(select id from taken)) and j.state < 'active'
    returning j.id, j.data, j.retry_count
  )
  select id, data, retry_count as "retryCount", null::boolean as capped from claimed
  union all
  -- Last, a row of its own: whether the walk stopped at $4 jobs, leaving jobs it did not reach.
  -- Counted only for a short batch, whose walk has read all it could anyway.
  select null, null, null,
         case when (select count(*) from claimed) < $2 then (select count(*) from walked) >= $4 else false end`,
}

/**
 * Fetches up to $2 jobs of the plain queue $1 as pg-boss's standard fetch does (same choice, same
 * claim), through `observers.fetch_plain` (migrations/0020_fetch_plain.sql): planned once per
 * connection where pg-boss's fetch, with its values inlined, is planned on every call.
 */
export const fetchPlain: NamedStatement = {
  name: 'observers_fetch_plain',
  text: `select id, data, "retryCount" from observers.fetch_plain($1, $2)`,
}

/**
 * Inserts jobs of the plain queue $1 ($2: a JSON array of {id, data, expire_seconds, retry_limit})
 * already claimed, as pg-boss's insert followed by its fetch would leave them: the queue's
 * options where pg-boss's insert takes them, `active` since now as its fetch sets it. For jobs
 * this process's runner has a free slot for (src/dispatch/lease.ts). A job already there is left
 * as it is and not returned.
 */
export const insertActive: NamedStatement = {
  name: 'observers_insert_active',
  text: `
  insert into ${jobTable} as j (
    id, name, data, state, start_after, created_on, started_on, heartbeat_on, expire_seconds,
    deletion_seconds, keep_until, retry_limit, retry_delay, retry_backoff, retry_delay_max, policy,
    dead_letter, heartbeat_seconds)
  select x.id, q.name, x.data, 'active', t.now, t.now, t.now, t.now,
         x.expire_seconds, q.deletion_seconds, t.now + q.retention_seconds * interval '1 second',
         x.retry_limit, q.retry_delay, q.retry_backoff, q.retry_delay_max, q.policy, q.dead_letter,
         q.heartbeat_seconds
    from ${bossSchema}.queue q
   cross join (select ${bossSchema}.job_now() as now) t
   cross join json_to_recordset($2::text::json) as x (id uuid, data jsonb, expire_seconds int, retry_limit int)
   where q.name = $1
  on conflict do nothing
  returning j.id`,
}

/**
 * The channel pg-boss NOTIFYs with a queue's name when a job lands on a queue created with
 * `notify: true`. pg-boss derives it from the schema name; the contract test checks it still does.
 */
export function notifyChannel(schema = bossSchema): string {
  return `pgboss_${createHash('sha224').update(schema).digest('hex').slice(0, 24)}`
}
