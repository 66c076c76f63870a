import { type ConstructorOptions, PgBoss } from 'pg-boss'
import { PreparingClient } from '../db/prepared.ts'
import type { AttemptRecord, Delivery } from '../delivery.ts'
import { parseExact } from '../json/exact.ts'
import type { Logger } from '../log.ts'

/** The only module that knows pg-boss. Everything else enqueues and works through it. */
export type Queue = PgBoss

export const bossSchema = 'pgboss'
export const dlqQueue = 'observers.dlq'

/**
 * Each action type has three queues: plain; `.ordered` (strict FIFO per row, for `ordering:
 * entity`); and `.limited` (for actions with max_concurrency). Only the last two pay for
 * pg-boss's group-concurrency fetch, which counts active jobs per destination on every poll.
 */
export const QueueVariants = ['plain', 'ordered', 'limited'] as const
export type QueueVariant = (typeof QueueVariants)[number]

export function queueName(actionType: string, variant: QueueVariant): string {
  return variant === 'plain' ? `observers.${actionType}` : `observers.${actionType}.${variant}`
}

/** Anything with pg's `query`: a pool or a client inside our own transaction. */
export interface SqlRunner {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>
}

function adapter(db: SqlRunner) {
  return { executeSql: (text: string, values?: unknown[]) => db.query(text, values) }
}

export async function startQueue(
  connectionString: string,
  opts: { log: Logger; poolSize: number; supervise?: boolean; migrate?: boolean; listenNotify?: boolean },
): Promise<Queue> {
  // pg-boss hands these options to its pg.Pool, whose `Client` option picks the client class.
  const options: ConstructorOptions & { Client: typeof PreparingClient } = {
    Client: PreparingClient,
    connectionString,
    schema: bossSchema,
    application_name: 'pg-observers-queue',
    max: opts.poolSize,
    useListenNotify: opts.listenNotify ?? true,
    supervise: opts.supervise ?? true,
    migrate: opts.migrate ?? true,
    superviseIntervalSeconds: 5,
    monitorIntervalSeconds: 5,
    schedule: false,
  }
  const boss = new PgBoss(options)
  boss.on('error', (err: unknown) => opts.log.error({ err, code: 'OB009' }, 'OB009: queue error'))
  await boss.start()
  return boss
}

/** Creates the DLQ and the three queues of every action type. */
export async function ensureQueues(boss: Queue, actionTypes: Iterable<string>, dlqRetentionDays: number) {
  if (!(await boss.getQueue(dlqQueue))) {
    await boss.createQueue(dlqQueue, { retentionSeconds: dlqRetentionDays * 86_400 })
  }
  for (const type of actionTypes) {
    for (const variant of QueueVariants) {
      const name = queueName(type, variant)
      if (await boss.getQueue(name)) continue
      await boss.createQueue(name, {
        notify: true,
        deadLetter: dlqQueue,
        ...(variant === 'ordered' ? { policy: 'key_strict_fifo' as const } : {}),
      })
    }
  }
}

export interface QueuedDelivery {
  /** Set on first dispatch, so inserting the same delivery twice is a no-op; random on replay. */
  jobId: string | undefined
  queue: string
  delivery: Delivery
  /** ordering key for strict-FIFO queues */
  key: string | undefined
  /** Destination and its max_concurrency, for actions that set one. */
  group: { id: string; limit: number } | undefined
  expireInSeconds: number
}

/** Inserts jobs through `db`, so they commit or roll back with the caller's transaction. */
export async function enqueue(boss: Queue, db: SqlRunner, items: QueuedDelivery[]): Promise<void> {
  const byQueue = Map.groupBy(items, (i) => i.queue)
  for (const [queue, group] of byQueue) {
    await boss.insert(
      queue,
      group.map((i) => ({
        ...(i.jobId ? { id: i.jobId } : {}),
        data: toJobData(i.delivery),
        retryLimit: i.delivery.retry.max_attempts - 1,
        expireInSeconds: i.expireInSeconds,
        ...(i.key === undefined ? {} : { singletonKey: i.key }),
        ...(i.group === undefined ? {} : { group: { id: i.group.id, tier: `c${i.group.limit}` } }),
      })),
      { db: adapter(db) },
    )
  }
}

/** A source entry that could not become an event (docs/sources.md), kept in the DLQ for inspection. */
export interface MalformedDeadLetter {
  /** Deterministic per entry, so dead-lettering the same entry twice is a no-op. */
  id: string
  source: string
  key: string
  code: string
  error: string
  entity: string | null
  entityId: string | null
  entry: Record<string, unknown>
}

/**
 * Inserts a dead letter for a malformed source entry through `db`, in the caller's transaction.
 * It names no observer and no source queue, so a DLQ retry leaves it where it is.
 */
export async function deadLetterMalformed(boss: Queue, db: SqlRunner, m: MalformedDeadLetter): Promise<void> {
  const record = { attempt: 1, at: new Date().toISOString(), code: m.code, error: m.error, duration_ms: 0 }
  const data = {
    delivery_id: m.id,
    observer: null,
    action_index: null,
    action: JSON.stringify({ type: 'malformed' }),
    event: { id: m.id, event: null, entity: m.entity, entity_id: m.entityId, source: m.source },
    malformed: { source: m.source, key: m.key, entry: m.entry },
    attempts: [record],
  }
  await boss.insert(dlqQueue, [{ id: m.id, data }], { db: adapter(db) })
}

/**
 * The action snapshot is stored as JSON text: jsonb would reorder the keys of JSON templates,
 * and a webhook body should come out in the order its author wrote.
 */
export type JobData = Omit<Delivery, 'action'> & { action: string }

function toJobData(d: Delivery): JobData {
  return { ...d, action: JSON.stringify(d.action) }
}

export function fromJobData(data: JobData): Delivery {
  return { ...data, action: parseExact(data.action) as Delivery['action'] }
}

/** Highest max_concurrency an action may set (observer.schema.json agrees). */
export const maxConcurrencyLimit = 100

// A job's group tier names its own limit, so any max_concurrency works without re-registering
// workers when observers change. Enforced by pg-boss across every worker process.
const groupTiers = Object.fromEntries(
  Array.from({ length: maxConcurrencyLimit }, (_, i) => [`c${i + 1}`, i + 1]),
)

export interface ClaimedJob {
  id: string
  queue: string
  /** 1-based; a crashed worker's attempt counts too. */
  attempt: number
  delivery: Delivery
  signal: AbortSignal
}

/** What the executor decided; this module turns it into job state. */
export type Outcome =
  | { kind: 'completed'; output: Record<string, unknown> }
  | { kind: 'retry'; delayMs: number; record: AttemptRecord }
  | { kind: 'failed'; record: AttemptRecord; deadLetter: boolean }

const retrySql = `
  update ${bossSchema}.job
     set state = 'retry',
         start_after = now() + $4::double precision * interval '1 millisecond',
         output = $5::jsonb,
         data = jsonb_set(data, '{attempts}', coalesce(data -> 'attempts', '[]'::jsonb) || jsonb_build_array($5::jsonb))
   where name = $1 and id = $2 and retry_count = $3 and state = 'active'`

// Makes pg-boss's own failure path terminal for this attempt, and drops the dead-letter
// target when the observer's on_failure policy does not want one.
const failSql = `
  update ${bossSchema}.job
     set retry_limit = retry_count,
         dead_letter = case when $4 then dead_letter end,
         data = jsonb_set(data, '{attempts}', coalesce(data -> 'attempts', '[]'::jsonb) || jsonb_build_array($5::jsonb))
   where name = $1 and id = $2 and retry_count = $3 and state = 'active'`

/** Jobs one worker loop fetches at a time, when the queue's concurrency allows that many. */
const jobsPerLoop = 16

/**
 * Works `queue` with `concurrency` jobs in flight in this process. Retries are scheduled
 * here to the millisecond (pg-boss's own backoff counts whole seconds), on the same job row,
 * so a strict-FIFO key stays blocked while it waits.
 */
/** Every local worker loop of `queue` fetches now (pg-boss's notifyWorker wakes only one). */
function wakeQueue(boss: Queue, queue: string): void {
  for (const w of boss.getWipData()) if (w.name === queue) boss.notifyWorker(w.id)
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  const lane = async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane))
  return results
}

export async function work(
  boss: Queue,
  queue: string,
  concurrency: number,
  handle: (job: ClaimedJob) => Promise<Outcome>,
): Promise<string> {
  // pg-boss polls again at once only after a full batch, so batches hold at least two jobs;
  // each loop then runs at most `perLoop` of its batch at a time, keeping `concurrency` exact.
  // Every fetch and completion is one statement and a NOTIFY wakes all idle loops, so fewer,
  // fuller loops cost Postgres less per job (docs/performance.md).
  // A limited queue has one fetch loop per process: pg-boss ranks a destination's jobs within one
  // fetch, but two loops fetching at the same instant could both take the last free slots.
  const limited = queue.endsWith('.limited')
  const localConcurrency = limited ? 1 : Math.max(1, Math.min(4, Math.ceil(concurrency / jobsPerLoop)))
  const perLoop = Math.ceil(concurrency / localConcurrency)
  const batchSize = Math.max(2, perLoop)
  const db = boss.getDb()
  const settle = async (job: { id: string; retryCount: number; data: JobData; signal: AbortSignal }) => {
    const outcome = await handle({
      id: job.id,
      queue,
      attempt: job.retryCount + 1,
      delivery: fromJobData(job.data),
      signal: job.signal,
    })
    if (outcome.kind === 'completed')
      return { id: job.id, status: 'completed' as const, output: outcome.output }
    if (outcome.kind === 'retry') {
      await db.executeSql(retrySql, [
        queue,
        job.id,
        job.retryCount,
        outcome.delayMs,
        JSON.stringify(outcome.record),
      ])
      // Polling is only a backstop; wake this queue's local workers when the retry falls due.
      setTimeout(() => wakeQueue(boss, queue), outcome.delayMs).unref()
      return { id: job.id, status: 'completed' as const }
    }
    await db.executeSql(failSql, [
      queue,
      job.id,
      job.retryCount,
      outcome.deadLetter,
      JSON.stringify(outcome.record),
    ])
    return { id: job.id, status: 'failed' as const, output: outcome.record }
  }
  return boss.work<JobData>(
    queue,
    {
      batchSize,
      localConcurrency,
      perJobResults: true,
      pollingIntervalSeconds: 0.5,
      notifyPollingIntervalSeconds: 5,
      burstWhenBatchFull: true,
      ...(queue.endsWith('.limited') || queue.endsWith('.ordered')
        ? { groupConcurrency: { default: 1_000_000, tiers: groupTiers } }
        : {}),
    },
    (jobs) => mapLimit(jobs, perLoop, settle),
  )
}
