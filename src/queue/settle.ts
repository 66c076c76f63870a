import type pg from 'pg'
import { withTransaction } from '../db/pool.ts'
import { completeDelivered, recordAttempt, type SettledAttempt } from '../db/queries/deliveries.ts'
import type { Statements } from '../db/statements.ts'
import { adapter, type Outcome, type Queue, waitingRetentionSeconds } from './boss.ts'
import { markFinalAttempt, requeueAttempt, scheduleRetry } from './pgboss-sql.ts'

/** The attempt a settlement is about: it changes the job only while that attempt holds it. */
export interface Attempt extends SettledAttempt {
  queue: string
}

interface Completion {
  job: Attempt
  output: Record<string, unknown>
  done: { resolve(): void; reject(err: unknown): void }
}

/**
 * Completes jobs as their attempts end, fenced on each attempt (a job pg-boss expired meanwhile
 * is left to its retry), and records them as delivered, each with its own output. One statement
 * at a time, per queue, for all the completions that ended while the last one was being written:
 * a busy worker does not pay one statement per delivery, and a lone one is a single round trip.
 * (Two at a time halved the batches and cost 15 % more CPU per event, docs/performance.md.)
 *
 * Completions commit without waiting for the WAL flush: an attempt holds its runner slot until
 * its completion is written, and on a slow disk that wait, not the delivery, decided how soon
 * the next job was fetched. A server crash can take back only the last few hundred ms of
 * completions, whole; their jobs are then still active, expire and run again, which
 * at-least-once delivery allows (docs/performance.md).
 */
export function completer(pool: pg.Pool, statements: Statements) {
  let pending: Completion[] = []
  let writing = false
  const write = async () => {
    writing = true
    while (pending.length > 0) {
      const batch = pending
      pending = []
      for (const [queue, group] of Map.groupBy(batch, (c) => c.job.queue)) {
        try {
          await completeDelivered(pool, statements, queue, group)
          for (const c of group) c.done.resolve()
        } catch (err) {
          for (const c of group) c.done.reject(err)
        }
      }
    }
    writing = false
  }
  return (job: Attempt, output: Record<string, unknown>) =>
    new Promise<void>((resolve, reject) => {
      pending.push({ job, output, done: { resolve, reject } })
      if (!writing) void write()
    })
}

export type Complete = ReturnType<typeof completer>

/**
 * Records one attempt's outcome on its job as soon as that attempt ends, whatever other attempts
 * are doing, and in the delivery record (src/db/queries/deliveries.ts; `completer` writes a
 * completion's record with its batch). Returns false when a retry or failure found the attempt no
 * longer holding the job (pg-boss expired it meanwhile and retries it).
 */
export async function settle(
  boss: Queue,
  pool: pg.Pool,
  statements: Statements,
  complete: Complete,
  job: Attempt,
  outcome: Outcome,
): Promise<boolean> {
  const held = await settleJob(boss, pool, statements, complete, job, outcome)
  if (held && outcome.kind !== 'completed') await recordAttempt(pool, statements, job, outcome)
  return held
}

async function settleJob(
  boss: Queue,
  pool: pg.Pool,
  statements: Statements,
  complete: Complete,
  job: Attempt,
  outcome: Outcome,
): Promise<boolean> {
  switch (outcome.kind) {
    case 'completed':
      await complete(job, outcome.output)
      return true
    case 'retry': {
      const { rows } = await statements.run(pool, scheduleRetry, [
        job.queue,
        job.id,
        job.retryCount,
        outcome.delayMs,
        JSON.stringify(outcome.record),
        waitingRetentionSeconds,
      ])
      return rows.length === 1
    }
    case 'requeue': {
      const { rows } = await statements.run(pool, requeueAttempt, [
        job.queue,
        job.id,
        job.retryCount,
        waitingRetentionSeconds,
        JSON.stringify(outcome.record),
      ])
      return rows.length === 1
    }
    case 'failed':
      return failFinally(boss, pool, statements, job, outcome)
  }
}

/** pg-boss's fail() moves the job to failed and copies it to the DLQ; our statement makes it final first. */
async function failFinally(
  boss: Queue,
  pool: pg.Pool,
  statements: Statements,
  job: Attempt,
  outcome: Extract<Outcome, { kind: 'failed' }>,
): Promise<boolean> {
  return withTransaction(pool, async (client) => {
    const { rows } = await statements.run(client, markFinalAttempt, [
      job.queue,
      job.id,
      job.retryCount,
      outcome.deadLetter,
      JSON.stringify(outcome.record),
    ])
    if (rows.length === 0) return false
    await boss.fail(job.queue, { id: job.id, retryCount: job.retryCount }, outcome.record, {
      db: adapter(client),
    })
    return true
  })
}
