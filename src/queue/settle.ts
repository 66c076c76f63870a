import type pg from 'pg'
import { withTransaction } from '../db/pool.ts'
import { recordAttempt, type SettledAttempt } from '../db/queries/deliveries.ts'
import type { Statements } from '../db/statements.ts'
import { adapter, type Outcome, type Queue, waitingRetentionSeconds } from './boss.ts'
import { markFinalAttempt, requeueAttempt, scheduleRetry } from './pgboss-sql.ts'

/** The attempt a settlement is about: it changes the job only while that attempt holds it. */
export interface Attempt extends SettledAttempt {
  queue: string
}

/**
 * Records one attempt's outcome on its job, on its own, as soon as that attempt ends, and in the
 * delivery record (src/db/queries/deliveries.ts). Returns false when a retry or failure found the
 * attempt no longer holding the job (pg-boss expired it meanwhile and retries it).
 */
export async function settle(
  boss: Queue,
  pool: pg.Pool,
  statements: Statements,
  job: Attempt,
  outcome: Outcome,
): Promise<boolean> {
  const held = await settleJob(boss, pool, statements, job, outcome)
  if (held) await recordAttempt(pool, statements, job, outcome)
  return held
}

async function settleJob(
  boss: Queue,
  pool: pg.Pool,
  statements: Statements,
  job: Attempt,
  outcome: Outcome,
): Promise<boolean> {
  const fence = { id: job.id, retryCount: job.retryCount }
  switch (outcome.kind) {
    case 'completed':
      // Fenced on the attempt: a job pg-boss expired meanwhile is left to its retry. The one
      // statement per delivery, so it is prepared like our own (its planning cost more than its run).
      await boss.complete(job.queue, fence, outcome.output, { db: statements.adapter(pool) })
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
