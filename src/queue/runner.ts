import { setTimeout as delay } from 'node:timers/promises'
import type pg from 'pg'
import type { Statements } from '../db/statements.ts'
import { ActionError, coerceError } from '../errors.ts'
import type { Logger } from '../log.ts'
import {
  type ClaimedJob,
  fromJobData,
  groupTiers,
  type JobData,
  type Outcome,
  type Queue,
  QueueVariants,
  queueName,
} from './boss.ts'
import { notifyChannel } from './pgboss-sql.ts'
import { settle } from './settle.ts'

/** Runs one action type's jobs, from all its queues, in one pool of slots. */
export interface Runner {
  /** Fetch now: new jobs may be waiting. */
  nudge(): void
  /** Stops fetching, gives attempts in flight `graceMs` to end, then cuts them short and requeues them. */
  stop(graceMs: number): Promise<void>
}

export interface RunnerOptions {
  boss: Queue
  pool: pg.Pool
  statements: Statements
  log: Logger
  actionType: string
  /** Attempts in flight at once, across the plain, ordered and limited queues. */
  concurrency: number
  /** LISTEN for new jobs; false behind a transaction-mode pooler, where only polling works. */
  listen: boolean
  handle: (job: ClaimedJob) => Promise<Outcome>
}

/** Backstop poll; NOTIFY and our own settlements wake the loop sooner. */
const pollMs = 2_000

/**
 * A job is fetched only when a slot is free to run it, so its expiry clock runs only while its
 * attempt does, and each attempt is settled the moment it ends. One loop fetches for all three
 * queues of the type, so the slots are shared and a limited queue has one fetcher per process
 * (pg-boss ranks a destination's jobs within one fetch; two fetching at once could overfill it).
 */
export function startRunner(o: RunnerOptions): Runner {
  const queues = QueueVariants.map((v) => queueName(o.actionType, v))
  const stopping = new AbortController()
  const cutShort = new AbortController()
  const running = new Set<Promise<void>>()
  let wake = new AbortController()
  let first = 0
  const nudge = () => wake.abort()

  const run = async (queue: string, job: { id: string; retryCount: number; data: JobData }) => {
    const attempt = { queue, id: job.id, retryCount: job.retryCount }
    try {
      const outcome = await o.handle({
        id: job.id,
        queue,
        attempt: job.retryCount + 1,
        delivery: fromJobData(job.data),
        signal: cutShort.signal,
      })
      const held = await settle(o.boss, o.pool, o.statements, attempt, outcome)
      if (!held) o.log.warn({ queue, job: job.id }, 'attempt ended after its job expired; pg-boss retries it')
      // A retry falls due later; wake the loop then rather than at the next poll.
      if (outcome.kind === 'retry') setTimeout(nudge, outcome.delayMs).unref()
    } catch (e) {
      o.log.error({ err: coerceError(e), code: 'OB009', queue, job: job.id }, 'OB009: could not settle a job')
    }
  }

  const start = (queue: string, job: { id: string; retryCount: number; data: JobData }) => {
    const p = run(queue, job).finally(() => {
      running.delete(p)
      nudge()
    })
    running.add(p)
  }

  const fetchRound = async (): Promise<number> => {
    let fetched = 0
    for (let k = 0; k < queues.length && running.size < o.concurrency; k++) {
      const queue = queues[(first + k) % queues.length] as string
      const jobs = await o.boss.fetch<JobData>(queue, {
        batchSize: o.concurrency - running.size,
        ...(queue === queueName(o.actionType, 'plain')
          ? {}
          : { groupConcurrency: { default: 1_000_000, tiers: groupTiers } }),
      })
      for (const job of jobs) start(queue, job)
      fetched += jobs.length
    }
    // Next round starts on the next queue, so no variant waits behind a busy one.
    first = (first + 1) % queues.length
    return fetched
  }

  const loop = async () => {
    while (!stopping.signal.aborted) {
      wake = new AbortController()
      let fetched = 0
      if (running.size < o.concurrency) {
        try {
          fetched = await fetchRound()
        } catch (e) {
          o.log.error({ err: coerceError(e), code: 'OB009' }, 'OB009: could not fetch jobs')
        }
      }
      // A round that found work and has slots left goes again at once.
      if (fetched > 0 && running.size < o.concurrency) continue
      const wait = AbortSignal.any([wake.signal, stopping.signal])
      await delay(running.size < o.concurrency ? pollMs : 3_600_000, undefined, { signal: wait }).catch(
        () => {},
      )
    }
  }

  const db = o.boss.getDb()
  const listening =
    o.listen && db.listen
      ? db
          .listen(
            notifyChannel(),
            (name) => {
              if (queues.includes(name)) nudge()
            },
            nudge,
          )
          .catch((e: unknown) => {
            o.log.warn({ err: coerceError(e) }, 'no LISTEN connection for new jobs; polling every 2 s')
            return undefined
          })
      : Promise.resolve(undefined)
  const looping = loop()

  return {
    nudge,
    async stop(graceMs) {
      stopping.abort()
      await looping
      await (await listening)?.close()
      const settled = Promise.all(running)
      const graceOver = delay(graceMs, undefined, { ref: false }).then(() => 'grace over' as const)
      if ((await Promise.race([settled, graceOver])) === 'grace over') {
        cutShort.abort(new ActionError('the worker shut down during the attempt', { retryable: true }))
        await Promise.all(running)
      }
    },
  }
}
