import { randomUUID } from 'node:crypto'
import { type Clock, type ConstructorOptions, PgBoss, type Queue as QueueOptions } from 'pg-boss'
import type { Queryable } from '../db/pool.ts'
import type { Statements } from '../db/statements.ts'
import { AppError, coerceError, ErrorCode } from '../errors/errors.ts'
import type { AttemptRecord, Delivery } from '../event/delivery.ts'
import { parseExact } from '../json/exact.ts'
import type { Logger } from '../log/log.ts'
import { bossSchema, insertActive as insertActiveStatement, notifyChannel } from './pgboss-sql.ts'

export { bossSchema }

/** The only module that knows pg-boss. Everything else enqueues and works through it. */
export type Queue = PgBoss

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

export function adapter(db: SqlRunner) {
  return { executeSql: (text: string, values?: unknown[]) => db.query(text, values) }
}

export async function startQueue(
  connectionString: string,
  opts: { log: Logger; poolSize: number; supervise?: boolean; migrate?: boolean; clock?: Clock },
): Promise<Queue> {
  const options: ConstructorOptions = {
    connectionString,
    schema: bossSchema,
    application_name: 'pg-observers-queue',
    max: opts.poolSize,
    // Our runners listen themselves (src/queue/runner.ts); pg-boss's listener wakes only its own workers.
    useListenNotify: false,
    supervise: opts.supervise ?? true,
    migrate: opts.migrate ?? true,
    superviseIntervalSeconds: 5,
    monitorIntervalSeconds: 5,
    schedule: false,
    ...(opts.clock ? { clock: opts.clock } : {}),
  }
  const boss = new PgBoss(options)
  boss.on('error', (err: unknown) =>
    opts.log.error({ err, code: ErrorCode.DatabaseError }, `${ErrorCode.DatabaseError}: queue error`),
  )
  await boss.start().catch(explainQueueSchema)
  return boss
}

/** pg-boss refuses to start on a schema it would have to create or migrate; say what to run. */
function explainQueueSchema(err: unknown): never {
  const message = coerceError(err).message
  if (/pg-boss is not installed|pg-boss database requires migrations/.test(message)) {
    throw new AppError(
      ErrorCode.DatabaseError,
      `the queue schema (pgboss) is missing or at another version (${message}): run \`observers migrate\` (npm run migrate, the Procfile's release phase) with a role that may create objects, then start the worker`,
      { cause: err },
    )
  }
  throw err
}

/**
 * How long a job may wait (created or retrying) before pg-boss deletes it. Deletion is no verdict,
 * so this is far beyond any retry schedule or outage: a waiting delivery is kept until it runs.
 * Each scheduled retry moves the deadline again (src/queue/pgboss-sql.ts).
 */
export const waitingRetentionSeconds = 3650 * 86_400

/**
 * Options of every action queue. A failed job of an ordered queue holds its key's later changes
 * until an operator retries or purges its dead letter, so pg-boss keeps it as long as the DLQ
 * keeps the letter; plain and limited queues keep finished jobs pg-boss's default 7 days.
 */
function actionQueueOptions(variant: QueueVariant, dlqRetentionDays: number) {
  return {
    // pg-boss would NOTIFY inside the inserting transaction, whose commit then waits for every
    // other notifying commit's WAL flush (Postgres serialises them); `enqueue` and the dispatcher
    // announce new jobs themselves instead (docs/performance.md).
    notify: false,
    retentionSeconds: waitingRetentionSeconds,
    ...(variant === 'ordered' ? { deleteAfterSeconds: dlqRetentionDays * 86_400 } : {}),
  } satisfies Omit<QueueOptions, 'name'>
}

/**
 * Creates the DLQ and the three queues of every action type, and brings queues made by an
 * older version to today's options.
 */
export async function ensureQueues(boss: Queue, actionTypes: Iterable<string>, dlqRetentionDays: number) {
  const dlqOptions = { retentionSeconds: dlqRetentionDays * 86_400 }
  if (!(await boss.getQueue(dlqQueue))) await boss.createQueue(dlqQueue, dlqOptions)
  else await boss.updateQueue(dlqQueue, dlqOptions)
  for (const type of actionTypes) {
    for (const variant of QueueVariants) {
      const name = queueName(type, variant)
      const options = actionQueueOptions(variant, dlqRetentionDays)
      const existing = await boss.getQueue(name)
      if (!existing) {
        await boss.createQueue(name, {
          ...options,
          deadLetter: dlqQueue,
          ...(variant === 'ordered' ? { policy: 'key_strict_fifo' as const } : {}),
        })
      } else if (
        existing.notify !== options.notify ||
        existing.retentionSeconds !== options.retentionSeconds ||
        (options.deleteAfterSeconds !== undefined &&
          existing.deleteAfterSeconds !== options.deleteAfterSeconds)
      ) {
        await boss.updateQueue(name, options)
      }
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

/** A job claimed for this process's runner: fetched, or inserted already active. */
export type FetchedJob = { id: string; retryCount: number; data: JobData }

/** A job to insert already active: the job the runner starts, and what its row needs besides. */
export type ActiveJob = FetchedJob & { expireInSeconds: number; retryLimit: number }

/**
 * The job `item` becomes when inserted already active, its id chosen here (random for a replay's
 * delivery, as pg-boss would) so that it can start before the insert answers.
 */
export function activeJob(item: QueuedDelivery): ActiveJob {
  return {
    id: item.jobId ?? randomUUID(),
    retryCount: 0,
    data: toJobData(item.delivery),
    expireInSeconds: item.expireInSeconds,
    retryLimit: item.delivery.retry.max_attempts,
  }
}

/**
 * Inserts `jobs` of the plain queue `queue` already active, through `db` in the caller's
 * transaction, for this process's runner to run without fetching them (src/dispatch/lease.ts).
 * Returns the ids inserted; a job already there is not.
 */
export async function insertActive(
  db: Queryable,
  statements: Statements,
  queue: string,
  jobs: readonly ActiveJob[],
): Promise<string[]> {
  const rows = jobs.map((j) => ({
    id: j.id,
    data: j.data,
    expire_seconds: j.expireInSeconds,
    retry_limit: j.retryLimit,
  }))
  const inserted = await statements.run(db, insertActiveStatement, [queue, JSON.stringify(rows)])
  return inserted.rows.map((r) => (r as { id: string }).id)
}

/** Wakes the runners listening for jobs on `queues`, in every worker (src/queue/runner.ts). */
export async function announce(db: SqlRunner, queues: Iterable<string>): Promise<void> {
  const names = [...new Set(queues)]
  if (names.length === 0) return
  await db.query('select pg_notify($1, q) from unnest($2::text[]) q', [notifyChannel(), names])
}

/**
 * Inserts jobs through `db`, so they commit or roll back with the caller's transaction, and
 * announces them at its commit; `{ announce: false }` leaves that to the caller (the dispatcher
 * wakes its own runners and announces after its commit). With `statements`, pg-boss's insert
 * (one fixed, parameterised text per queue) is prepared like our own hot statements.
 */
export async function enqueue(
  boss: Queue,
  db: Queryable,
  items: QueuedDelivery[],
  opts: { announce?: boolean; statements?: Statements } = {},
): Promise<void> {
  const bossDb = opts.statements ? opts.statements.adapter(db) : adapter(db)
  const byQueue = Map.groupBy(items, (i) => i.queue)
  for (const [queue, group] of byQueue) {
    await boss.insert(
      queue,
      group.map((i) => ({
        ...(i.jobId ? { id: i.jobId } : {}),
        data: toJobData(i.delivery),
        // One more than the policy allows: only pg-boss's expiry of a crashed worker's attempt
        // spends it, so an expiry is never the last attempt. Our own verdicts end the job sooner.
        retryLimit: i.delivery.retry.max_attempts,
        expireInSeconds: i.expireInSeconds,
        ...(i.key === undefined ? {} : { singletonKey: i.key }),
        ...(i.group === undefined ? {} : { group: { id: i.group.id, tier: `c${i.group.limit}` } }),
      })),
      { db: bossDb },
    )
  }
  if (opts.announce !== false) await announce(db, byQueue.keys())
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
export const groupTiers = Object.fromEntries(
  Array.from({ length: maxConcurrencyLimit }, (_, i) => [`c${i + 1}`, i + 1]),
)

export interface ClaimedJob {
  id: string
  queue: string
  /** 1-based; a crashed worker's attempt counts too. */
  attempt: number
  delivery: Delivery
  /** Aborted when the worker shuts down before the attempt ends. */
  signal: AbortSignal
}

/**
 * What the executor decided; src/queue/settle.ts turns it into job state. `retryAfterMs` is the
 * destination's own Retry-After, when it sent one.
 */
export type Outcome =
  | { kind: 'completed'; output: Record<string, unknown> }
  | { kind: 'retry'; delayMs: number; record: AttemptRecord; retryAfterMs?: number }
  /** Cut short by shutdown: back to the queue at once, the attempt not spent. */
  | { kind: 'requeue'; record: AttemptRecord }
  | { kind: 'failed'; record: AttemptRecord; deadLetter: boolean; retryAfterMs?: number }
