import { setTimeout as delay } from 'node:timers/promises'
import type pg from 'pg'
import { lockKeys } from '../db/locks.ts'
import { withTransaction } from '../db/pool.ts'
import type { Statements } from '../db/statements.ts'
import { ActionError, coerceError, ErrorCode } from '../errors/errors.ts'
import type { Delivery } from '../event/delivery.ts'
import type { Logger } from '../log/log.ts'
import {
  adapter,
  type ClaimedJob,
  type FetchedJob,
  fromJobData,
  groupTiers,
  type JobData,
  type Outcome,
  type Queue,
  QueueVariants,
  queueName,
} from './boss.ts'
import { fetchOrdered, fetchPlain, notifyChannel, orderedWalk } from './pgboss-sql.ts'
import { type Attempt, completer, settle } from './settle.ts'

/** Runs one action type's jobs, from all its queues, in one pool of slots. */
interface Runner {
  queues: readonly string[]
  plain: string
  /** Jobs may be ready on `queue` (all of them when undefined): fetch from it once a slot is free. */
  mark(queue?: string): void
  lease(n: number): Lease | undefined
  stop(graceMs: number): Promise<void>
}

/** Slots of a runner kept for jobs being inserted already active, so that no fetch is needed to run them. */
export interface Lease {
  readonly size: number
  /**
   * Runs `jobs` (at most `size`) while the transaction inserting them commits, and frees the
   * slots left over. `inserted` resolves to the ids that transaction committed, none when it
   * rolled back: an attempt writes to its job (a hold, its settlement) only once it resolves, and
   * only if its id is there. Otherwise its delivery is made again when the change is dispatched
   * again, which at-least-once allows.
   */
  start(jobs: readonly FetchedJob[], inserted: Promise<ReadonlySet<string>>): void
}

/** Every action type's runner, and the one LISTEN connection that wakes them. */
export interface Runners {
  /** Jobs may be ready on `queue`: its runner fetches from it once a slot is free. */
  mark(queue: string): void
  /**
   * Keeps up to `n` free slots of the plain queue `queue`'s runner for jobs the caller inserts
   * already active; undefined when none is free or the runners are stopping.
   */
  lease(queue: string, n: number): Lease | undefined
  /** Stops fetching, gives attempts in flight `graceMs` to end, then cuts them short and requeues them. */
  stop(graceMs: number): Promise<void>
}

export interface RunnerOptions {
  boss: Queue
  pool: pg.Pool
  statements: Statements
  log: Logger
  /** Attempts in flight at once per action type, across its plain, ordered and limited queues. */
  concurrency: (actionType: string) => number
  /** LISTEN for new jobs; false behind a transaction-mode pooler, where LISTEN cannot work. */
  listen: boolean
  /** Backstop poll of every queue; 5000 ms while listening, 1000 ms otherwise when undefined. */
  pollMs?: number | undefined
  handle: (job: ClaimedJob) => Promise<Outcome>
  holds?: Holds
}

/** What keeps a job from running now (src/control): a pause, an open breaker, a spent rate. */
export interface Holds {
  /**
   * Whether `hold` may keep it, from what this process knows without asking Postgres: a job no
   * hold concerns runs without waiting for the transaction that inserted it to commit.
   */
  concerns(delivery: Delivery): boolean
  /** Puts a job back to wait without running it; true when it did. */
  hold(job: Attempt, delivery: Delivery): Promise<boolean>
}

/** Backstop poll of every queue: for jobs no NOTIFY announced (a crashed worker's, once expired). */
const pollMs = { listening: 5_000, polling: 1_000 }
/** A runner with jobs in flight refills once this share of its slots is free, or after refillMs. */
const refillShare = 4
const refillMs = 10

export async function startRunners(actionTypes: Iterable<string>, o: RunnerOptions): Promise<Runners> {
  const runners = [...actionTypes].map((type) => startRunner(type, o))
  const byQueue = new Map(runners.flatMap((r) => r.queues.map((q) => [q, r] as const)))
  const markAll = () => {
    for (const r of runners) r.mark()
  }
  const db = o.boss.getDb()
  const listener = await (o.listen
    ? db.listen?.(notifyChannel(), (queue) => byQueue.get(queue)?.mark(queue), markAll)
    : undefined
  )?.catch((e: unknown) => {
    o.log.warn({ err: coerceError(e) }, 'no LISTEN connection for new jobs; polling every second')
    return undefined
  })
  const backstop = setInterval(markAll, o.pollMs ?? (listener ? pollMs.listening : pollMs.polling))
  backstop.unref()
  return {
    mark: (queue) => byQueue.get(queue)?.mark(queue),
    lease(queue, n) {
      const runner = byQueue.get(queue)
      return runner?.plain === queue ? runner.lease(n) : undefined
    },
    async stop(graceMs) {
      clearInterval(backstop)
      await listener?.close()
      await Promise.all(runners.map((r) => r.stop(graceMs)))
    },
  }
}

const tiersJson = JSON.stringify(groupTiers)
/** A group's limit is its tier's; a job without a tier has none. */
const groupsUnbounded = { default: 1_000_000, tiers: groupTiers }

/**
 * Fetches from a queue whose jobs carry a group (max_concurrency). The fetch counts a group's
 * active jobs and ranks its candidates within one statement; two statements running at once
 * (two processes) would each see the same free slots. A transaction-scoped advisory lock on
 * the queue makes those fetches take turns across every process, so the count is exact. It
 * lasts one short transaction, dies with a crashed holder's connection and works behind a
 * transaction-mode pooler; a crashed worker's slot is its `active` job, freed by pg-boss's expiry.
 * Ordered queues are fetched by our own statement (`fetchOrdered`), whose cost follows what it
 * takes where pg-boss's strict-FIFO fetch reads every waiting job.
 */
async function fetchSerialised(
  o: RunnerOptions,
  queue: string,
  ordered: boolean,
  batchSize: number,
): Promise<FetchedJob[]> {
  return withTransaction(o.pool, async (client) => {
    // JIT compiling a generic plan, costed for a guessed LIMIT, takes ~50 ms for a 1 ms fetch.
    await client.query(
      "select pg_advisory_xact_lock($1::int, hashtext($2)), set_config('jit', 'off', true)",
      [lockKeys.fetchClass, queue],
    )
    if (ordered) return fetchOrderedJobs(o.boss, o.statements, client, queue, batchSize)
    return o.boss.fetch<JobData>(queue, { batchSize, groupConcurrency: groupsUnbounded, db: adapter(client) })
  })
}

/**
 * Up to `batchSize` jobs of the ordered queue `queue`, through `client` in the caller's
 * transaction (which serialises the queue's fetches): our walk, and pg-boss's fetch only when
 * the walk stopped at its cap behind a key holding many jobs back. pg-boss's fetch reads every
 * waiting key's head, so it finds what lies beyond.
 */
export async function fetchOrderedJobs(
  boss: Queue,
  statements: Statements,
  client: pg.PoolClient,
  queue: string,
  batchSize: number,
): Promise<FetchedJob[]> {
  const { rows } = await statements.run(client, fetchOrdered, [queue, batchSize, tiersJson, orderedWalk])
  const walk = rows as (FetchedJob & { capped: boolean | null })[]
  const jobs = walk.filter((r) => r.capped === null)
  if (!walk.some((r) => r.capped) || jobs.length >= batchSize) return jobs
  const beyond = await boss.fetch<JobData>(queue, {
    batchSize: batchSize - jobs.length,
    groupConcurrency: groupsUnbounded,
    db: adapter(client),
  })
  return [...jobs, ...beyond]
}

/**
 * A job is fetched only when a slot is free to run it, so its expiry clock runs only while its
 * attempt does, and each attempt is settled the moment it ends. One loop fetches for all three
 * queues of the type, so the slots are shared; fetches of the ordered and limited queues take
 * turns across every process (`fetchSerialised`), so max_concurrency holds cluster-wide.
 * Only queues marked as possibly holding jobs are fetched from, so idle variants cost nothing.
 */
function startRunner(actionType: string, o: RunnerOptions): Runner {
  const queues = QueueVariants.map((v) => queueName(actionType, v))
  const plain = queueName(actionType, 'plain')
  const ordered = queueName(actionType, 'ordered')
  const concurrency = o.concurrency(actionType)
  const complete = completer(o.pool, o.statements)
  const refillAt = Math.max(1, Math.floor(concurrency / refillShare))
  let stopping = false
  const cutShort = new AbortController()
  // A slot is held until the attempt is settled, so the jobs active in Postgres never exceed it.
  const running = new Set<Promise<void>>()
  // Slots kept for jobs being inserted already active (leases) and for a fetch in flight.
  let leased = 0
  let fetching = 0
  const busy = () => running.size + leased + fetching
  // Marks per queue: a fetch that comes back short unmarks its queue only if none came meanwhile.
  const marks = new Map(queues.map((q) => [q, 1]))
  let first = 0
  let wakeUp: (() => void) | undefined
  const nudge = () => wakeUp?.()
  /** Resolves after `ms`, or at once when nudged. */
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        wakeUp = undefined
        resolve()
      }
      const timer = setTimeout(done, ms)
      wakeUp = done
    })
  const mark = (queue?: string) => {
    for (const q of queue === undefined ? queues : [queue]) marks.set(q, (marks.get(q) ?? 0) + 1)
    nudge()
  }

  const run = async (queue: string, job: FetchedJob, inserted?: Promise<ReadonlySet<string>>) => {
    const committed = async () => inserted === undefined || (await inserted).has(job.id)
    try {
      const delivery = fromJobData(job.data)
      if (o.holds?.concerns(delivery)) {
        if (!(await committed())) return
        if (await o.holds.hold({ queue, ...job }, delivery)) {
          mark(queue)
          return
        }
      }
      const outcome = await o.handle({
        id: job.id,
        queue,
        attempt: job.retryCount + 1,
        delivery,
        signal: cutShort.signal,
      })
      if (!(await committed())) {
        o.log.warn(
          { queue, job: job.id, delivery: delivery.delivery_id },
          'the dispatch pass that started this attempt rolled back; its change is dispatched again',
        )
        return
      }
      const held = await settle(o.boss, o.pool, o.statements, complete, { queue, ...job }, outcome)
      if (!held) o.log.warn({ queue, job: job.id }, 'attempt ended after its job expired; pg-boss retries it')
      if (outcome.kind === 'retry') setTimeout(() => mark(queue), outcome.delayMs).unref()
      // A settled job of an ordered or limited queue frees a row's key or a destination's slot
      // for a job that no NOTIFY announces.
      if (outcome.kind === 'requeue' || queue !== plain) mark(queue)
    } catch (e) {
      o.log.error(
        { err: coerceError(e), code: ErrorCode.DatabaseError, queue, job: job.id },
        `${ErrorCode.DatabaseError}: could not settle a job`,
      )
    }
  }

  const start = (queue: string, job: FetchedJob, inserted?: Promise<ReadonlySet<string>>) => {
    const p = run(queue, job, inserted).finally(() => {
      running.delete(p)
      nudge()
    })
    running.add(p)
  }

  const fetchFrom = async (queue: string) => {
    const seen = marks.get(queue) ?? 0
    const batchSize = concurrency - busy()
    // The slots this fetch may fill are taken until it returns, so no lease takes them meanwhile.
    fetching = batchSize
    let jobs: FetchedJob[]
    try {
      jobs =
        queue === plain
          ? ((await o.statements.run(o.pool, fetchPlain, [queue, batchSize])).rows as FetchedJob[])
          : await fetchSerialised(o, queue, queue === ordered, batchSize)
    } finally {
      fetching = 0
    }
    if (jobs.length < batchSize && marks.get(queue) === seen) marks.delete(queue)
    for (const job of jobs) start(queue, job)
  }

  const fetchRound = async () => {
    for (let k = 0; k < queues.length && busy() < concurrency; k++) {
      const queue = queues[(first + k) % queues.length] as string
      if (marks.has(queue)) await fetchFrom(queue)
    }
    // The next round starts on the next queue, so no variant waits behind a busy one.
    first = (first + 1) % queues.length
  }

  const loop = async () => {
    let lingered = false
    while (!stopping) {
      const free = concurrency - busy()
      if (marks.size === 0 || free === 0) {
        await sleep(pollMs.listening)
        continue
      }
      // With attempts in flight, let a few more slots free up: one fetch then fills them all.
      if (busy() > 0 && free < refillAt && !lingered) {
        lingered = true
        await sleep(refillMs)
        continue
      }
      lingered = false
      try {
        await fetchRound()
      } catch (e) {
        o.log.error(
          { err: coerceError(e), code: ErrorCode.DatabaseError },
          `${ErrorCode.DatabaseError}: could not fetch jobs`,
        )
        await sleep(pollMs.polling)
      }
    }
  }
  const looping = loop()

  const lease = (n: number): Lease | undefined => {
    const size = Math.min(n, concurrency - busy())
    if (stopping || size <= 0) return undefined
    leased += size
    let open = true
    return {
      size,
      start(jobs, inserted) {
        if (!open) return
        open = false
        leased -= size
        for (const job of jobs.slice(0, size)) start(plain, job, inserted)
        nudge()
      },
    }
  }

  return {
    queues,
    plain,
    mark,
    lease,
    async stop(graceMs) {
      stopping = true
      nudge()
      await looping
      const settled = Promise.all(running)
      const graceOver = delay(graceMs, undefined, { ref: false }).then(() => 'grace over' as const)
      if ((await Promise.race([settled, graceOver])) === 'grace over') {
        cutShort.abort(new ActionError('the worker shut down during the attempt', { retryable: true }))
        await Promise.all(running)
      }
    },
  }
}
