import type { JobData, Outcome } from '../../queue/boss.ts'
import { bossSchema } from '../../queue/pgboss-sql.ts'
import type { Queryable } from '../pool.ts'
import type { NamedStatement, Statements } from '../statements.ts'

export const DeliveryOutcomes = ['delivered', 'retrying', 'dead_lettered', 'given_up'] as const
export type DeliveryOutcome = (typeof DeliveryOutcomes)[number]

/** One settled attempt: which job, which attempt of it, and the delivery it carries. */
export interface SettledAttempt {
  id: string
  retryCount: number
  data: Pick<JobData, 'delivery_id' | 'observer' | 'action_index' | 'event'>
}

interface Settled {
  outcome: DeliveryOutcome
  error: string | null
  /** the OB code of `error` */
  errorCode: string | null
  durationMs: number | null
  /** what the destination answered, on a delivered attempt only */
  output: Record<string, unknown> | null
}

/** The attempt's duration as execute() reported it: in a completion's output, or its failure record. */
function durationOf(output: Record<string, unknown>): number | null {
  return typeof output.duration_ms === 'number' ? Math.round(output.duration_ms) : null
}

function outcomeOf(outcome: Outcome): Settled | undefined {
  switch (outcome.kind) {
    case 'completed':
      return {
        outcome: 'delivered',
        error: null,
        errorCode: null,
        durationMs: durationOf(outcome.output),
        output: outcome.output,
      }
    case 'retry':
      return {
        outcome: 'retrying',
        error: outcome.record.error,
        errorCode: outcome.record.code,
        durationMs: outcome.record.duration_ms,
        output: null,
      }
    case 'failed':
      return {
        outcome: outcome.deadLetter ? 'dead_lettered' : 'given_up',
        error: outcome.record.error,
        errorCode: outcome.record.code,
        durationMs: outcome.record.duration_ms,
        output: null,
      }
    case 'requeue':
      // Cut short by shutdown: no verdict, and the attempt is not spent.
      return undefined
  }
}

/**
 * How a settled attempt merges into the record. The outcome moves only forward within a job (a
 * later attempt wins over a late settlement of an earlier one); a replay's job is a new job and
 * always wins.
 */
const mergeAttempt = `
  on conflict (delivery_id) do update set
    attempts = d.attempts + 1,
    last_attempt_at = greatest(d.last_attempt_at, excluded.last_attempt_at),
    delivered_at = coalesce(d.delivered_at, excluded.delivered_at),
    outcome = case when d.job_id <> excluded.job_id or excluded.job_attempt >= d.job_attempt
                   then excluded.outcome else d.outcome end,
    last_error = case when d.job_id <> excluded.job_id or excluded.job_attempt >= d.job_attempt
                      then excluded.last_error else d.last_error end,
    last_error_code = case when d.job_id <> excluded.job_id or excluded.job_attempt >= d.job_attempt
                           then excluded.last_error_code else d.last_error_code end,
    job_attempt = case when d.job_id <> excluded.job_id or excluded.job_attempt >= d.job_attempt
                       then excluded.job_attempt else d.job_attempt end,
    duration_ms = case when d.job_id <> excluded.job_id or excluded.job_attempt >= d.job_attempt
                       then excluded.duration_ms else d.duration_ms end,
    job_id = excluded.job_id,
    output = coalesce(excluded.output, d.output)`

const columns = `(delivery_id, observer, action_index, event_id, entity, entity_id, seq, outcome, attempts,
     first_attempt_at, last_attempt_at, delivered_at, last_error, last_error_code, job_id, job_attempt,
     duration_ms, output)`

/** One upsert per settled attempt. */
const recordStatement: NamedStatement = {
  name: 'observers_record_delivery',
  text: `
  insert into observers.deliveries as d ${columns}
  values ($1, $2, $3, $4, $5, $6, $7, $8, 1, now(), now(),
          case when $8 = 'delivered' then now() end, $9, $10, $11, $12, $13, $14)
  ${mergeAttempt}`,
}

/** Records a settled attempt in observers.deliveries; an attempt cut short by shutdown is not one. */
export async function recordAttempt(
  db: Queryable,
  run: Statements,
  job: SettledAttempt,
  outcome: Outcome,
): Promise<void> {
  const settled = outcomeOf(outcome)
  if (!settled) return
  const { data } = job
  await run.run(db, recordStatement, [
    data.delivery_id,
    data.observer,
    data.action_index,
    data.event.id,
    data.event.entity,
    data.event.entity_id,
    data.event.seq,
    settled.outcome,
    settled.error,
    settled.errorCode,
    job.id,
    job.retryCount + 1,
    settled.durationMs,
    settled.output && JSON.stringify(settled.output),
  ])
}

/**
 * Completes delivered jobs of the queue $1 and records them as delivered, in one statement for a
 * whole batch ($2, a JSON array of attempts): one round trip where a transaction of pg-boss's
 * complete() and the record took four. The update is pg-boss's completion, fenced on the attempt
 * as its complete() is when given one (test/queue/pgboss-contract.test.ts compares the rows).
 * The record is written whether or not the fence held: the destination got the delivery either
 * way. set_config(…, true) lasts until this statement's own transaction commits, so the commit
 * does not wait for the WAL flush (see `settle.ts` for why that loss is harmless).
 */
const completeDeliveredStatement: NamedStatement = {
  name: 'observers_complete_delivered',
  text: `
  with completed as (
    update ${bossSchema}.job
       set completed_on = ${bossSchema}.job_now(), state = 'completed', output = null
     where name = $1 and id = any($2::uuid[]) and state = 'active'
       and (id::text || ':' || retry_count::text) = any($3::text[])
    returning id
  ), recorded as (
    insert into observers.deliveries as d ${columns}
    select x.delivery_id, x.observer, x.action_index, x.event_id, x.entity, x.entity_id, x.seq,
           'delivered', 1, now(), now(), now(), null, null, x.job_id, x.job_attempt, x.duration_ms, x.output
      from jsonb_to_recordset($4::jsonb) as x(delivery_id text, observer text, action_index int,
           event_id text, entity text, entity_id text, seq bigint, job_id uuid, job_attempt int,
           duration_ms int, output jsonb)
    ${mergeAttempt}
  )
  select set_config('synchronous_commit', 'off', true) as commit_mode,
         (select count(*) from completed)::int as completed`,
}

/**
 * Completes attempts of the queue `queue` that all delivered, and records them, one statement for
 * the whole batch. One upsert cannot touch a row twice, so a second attempt of the same delivery
 * in the batch (an expired attempt and its retry ending together) goes in a statement after it.
 * Returns how many jobs the fence let it complete.
 */
export async function completeDelivered(
  db: Queryable,
  run: Statements,
  queue: string,
  completions: ReadonlyArray<{ job: SettledAttempt; output: Record<string, unknown> }>,
): Promise<number> {
  let completed = 0
  let rest = completions
  while (rest.length > 0) {
    const seen = new Set<string>()
    const rows: Record<string, unknown>[] = []
    const ids: string[] = []
    const fence: string[] = []
    const again: Array<(typeof completions)[number]> = []
    for (const completion of rest) {
      const { job, output } = completion
      const { data } = job
      if (seen.has(data.delivery_id)) {
        again.push(completion)
        continue
      }
      seen.add(data.delivery_id)
      ids.push(job.id)
      // pg-boss's attempt fence, as its complete() builds it
      fence.push(`${job.id}:${job.retryCount}`)
      rows.push({
        delivery_id: data.delivery_id,
        observer: data.observer,
        action_index: data.action_index,
        event_id: data.event.id,
        entity: data.event.entity,
        entity_id: data.event.entity_id,
        seq: data.event.seq,
        job_id: job.id,
        job_attempt: job.retryCount + 1,
        duration_ms: durationOf(output),
        output,
      })
    }
    const { rows: result } = await run.run(db, completeDeliveredStatement, [
      queue,
      ids,
      fence,
      JSON.stringify(rows),
    ])
    completed += (result[0] as { completed: number } | undefined)?.completed ?? 0
    rest = again
  }
  return completed
}

export interface DeliveryFilter {
  observer?: string | undefined
  outcome?: DeliveryOutcome | undefined
  since?: Date | undefined
  entity?: string | undefined
  entityId?: string | undefined
  limit: number
}

export interface DeliveryRecord {
  delivery_id: string
  observer: string
  action_index: number
  entity: string
  entity_id: string
  seq: number
  outcome: DeliveryOutcome
  attempts: number
  first_attempt_at: string
  last_attempt_at: string
  delivered_at: string | null
  last_error: string | null
  /** the OB code of `last_error` */
  last_error_code: string | null
  output: Record<string, unknown> | null
}

/** The record, newest attempt first, filtered; `since` bounds the last attempt. */
export async function listDeliveries(db: Queryable, f: DeliveryFilter): Promise<DeliveryRecord[]> {
  const { rows } = await db.query<
    Omit<DeliveryRecord, 'seq' | 'first_attempt_at' | 'last_attempt_at' | 'delivered_at'> & {
      seq: string
      first_attempt_at: Date
      last_attempt_at: Date
      delivered_at: Date | null
    }
  >(
    `select delivery_id, observer, action_index, entity, entity_id, seq, outcome, attempts,
            first_attempt_at, last_attempt_at, delivered_at, last_error, last_error_code, output
       from observers.deliveries
      where ($1::text is null or observer = $1) and ($2::text is null or outcome = $2)
        and ($3::timestamptz is null or last_attempt_at >= $3)
        and ($4::text is null or entity = $4) and ($5::text is null or entity_id = $5)
      order by last_attempt_at desc, delivery_id
      limit $6`,
    [f.observer ?? null, f.outcome ?? null, f.since ?? null, f.entity ?? null, f.entityId ?? null, f.limit],
  )
  return rows.map((r) => ({
    ...r,
    seq: Number(r.seq),
    first_attempt_at: r.first_attempt_at.toISOString(),
    last_attempt_at: r.last_attempt_at.toISOString(),
    delivered_at: r.delivered_at?.toISOString() ?? null,
  }))
}

/**
 * Delivery ids of changes seq `from`..`to` that some attempt delivered (`which: 'delivered'`), or
 * whose last outcome was a failure (`'failed'`). One range scan per page of a replay: probing
 * each delivery id cost a dry run of 1 M changes twice its time. Other sources' seqs overlap
 * ours, so callers match ids, never count rows.
 */
export async function deliveriesInSeqRange(
  db: Queryable,
  from: number,
  to: number,
  which: 'delivered' | 'failed',
): Promise<Set<string>> {
  const { rows } = await db.query<{ delivery_id: string }>(
    `select delivery_id from observers.deliveries
      where seq between $1 and $2
        and ${which === 'delivered' ? 'delivered_at is not null' : `outcome in ('dead_lettered', 'given_up')`}`,
    [from, to],
  )
  return new Set(rows.map((r) => r.delivery_id))
}

/** Deletes records whose last attempt is older than the change log's retention, in batches. */
export async function pruneDeliveries(db: Queryable, days: number, batch = 5000): Promise<number> {
  let total = 0
  for (;;) {
    const { rowCount } = await db.query(
      `delete from observers.deliveries where delivery_id in (
         select delivery_id from observers.deliveries
          where last_attempt_at < now() - $1::int * interval '1 day' limit $2)`,
      [days, batch],
    )
    total += rowCount ?? 0
    if ((rowCount ?? 0) < batch) return total
  }
}

/** What every worker did for one observer over a recent window, from the delivery record. */
export interface ObserverActivity {
  /** deliveries whose last attempt in the window delivered */
  delivered: number
  /** ... failed and will be tried again */
  retrying: number
  /** ... failed for good (dead-lettered or given up) */
  failed: number
  /** nearest-rank percentiles of those last attempts' durations; null when none has one */
  p50_ms: number | null
  p95_ms: number | null
}

/** The latest failed attempt of an observer's deliveries in the window. */
export interface LastFailure {
  at: string
  code: string | null
  message: string
  delivery_id: string
}

/** The activity with what the list of observers adds to it, from the same scan. */
export interface ObserverFigures extends ObserverActivity {
  /** deliveries first attempted in the window: the observer's new work */
  started: number
  /** attempts of those deliveries that failed and were tried again (or are waiting to be) */
  retried: number
  last_failure: LastFailure | null
}

/**
 * Per observer (or only `observer`'s), the deliveries whose last attempt settled in the last
 * `seconds`, cluster-wide, in one statement for every observer: one scan of the window, sorted by
 * observer. Every attempt but a delivery's last failed (or delivered before a replay) and was tried
 * again, and so was a retrying delivery's last: hence `retried`. The last failure is found by its
 * time through deliveries_last_attempt, one probe per observer, so the sort does not carry every
 * row's error text (docs/performance.md).
 */
export async function observerActivity(
  db: Queryable,
  seconds: number,
  observer?: string,
): Promise<Map<string, ObserverFigures>> {
  const { rows } = await db.query<
    Omit<ObserverFigures, 'last_failure'> & {
      observer: string
      last_failure: { at: string; code: string | null; message: string | null; delivery_id: string } | null
    }
  >(
    `with a as (
       select observer,
              count(*) filter (where outcome = 'delivered')::int as delivered,
              count(*) filter (where outcome = 'retrying')::int as retrying,
              count(*) filter (where outcome in ('dead_lettered', 'given_up'))::int as failed,
              percentile_disc(0.5) within group (order by duration_ms) as p50_ms,
              percentile_disc(0.95) within group (order by duration_ms) as p95_ms,
              count(*) filter (where first_attempt_at >= now() - $1::int * interval '1 second')::int
                as started,
              (sum(attempts) - count(*) filter (where outcome <> 'retrying'))::int as retried,
              max(last_attempt_at) filter (where outcome <> 'delivered') as failed_at
         from observers.deliveries
        where last_attempt_at >= now() - $1::int * interval '1 second'
          and ($2::text is null or observer = $2)
        group by observer)
     select a.observer, a.delivered, a.retrying, a.failed, a.p50_ms, a.p95_ms, a.started, a.retried,
            f.last_failure
       from a
       left join lateral (
         select jsonb_build_object('at', d.last_attempt_at, 'code', d.last_error_code,
                                   'message', d.last_error, 'delivery_id', d.delivery_id) as last_failure
           from observers.deliveries d
          where d.last_attempt_at = a.failed_at and d.observer = a.observer and d.outcome <> 'delivered'
          order by d.delivery_id
          limit 1) f on true`,
    [seconds, observer ?? null],
  )
  return new Map(
    rows.map(({ observer, last_failure: f, ...figures }) => [
      observer,
      {
        ...figures,
        last_failure: f && {
          at: new Date(f.at).toISOString(),
          code: f.code,
          message: f.message ?? '',
          delivery_id: f.delivery_id,
        },
      },
    ]),
  )
}

/** An observer's deliveries in the record by last outcome (as long as the change log is kept). */
export async function countDeliveriesByOutcome(
  db: Queryable,
  observer: string,
): Promise<Record<DeliveryOutcome, number>> {
  const { rows } = await db.query<{ outcome: DeliveryOutcome; n: number }>(
    'select outcome, count(*)::int as n from observers.deliveries where observer = $1 group by outcome',
    [observer],
  )
  const counts = Object.fromEntries(DeliveryOutcomes.map((o) => [o, 0])) as Record<DeliveryOutcome, number>
  for (const r of rows) counts[r.outcome] = r.n
  return counts
}
