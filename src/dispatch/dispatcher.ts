import { setTimeout as delay } from 'node:timers/promises'
import type { Config } from '../config/config.ts'
import { type Pool, withTransaction } from '../db/pool.ts'
import { isClaimBusy, type PartitionScope } from '../db/queries/change-log.ts'
import { type Statements, statements } from '../db/statements.ts'
import { coerceError, describeError, ErrorCode } from '../errors/errors.ts'
import type { ChangeEvent } from '../event/event.ts'
import type { Logger } from '../log/log.ts'
import { announce, deadLetterMalformed, enqueue, type Queue, type QueuedDelivery } from '../queue/boss.ts'
import { changeLogSource } from '../sources/changelog.ts'
import { type SourceStats, sourceHealth, sourceStats } from '../sources/health.ts'
import { stableUuid } from '../sources/ids.ts'
import type { ChangeSource, ClaimedBatch, SourceHealth } from '../sources/types.ts'
import { enqueueEach, isDataError } from './isolate.ts'
import { insertLeased, type LeaseSlots } from './lease.ts'
import { type Listener, startListener } from './listener.ts'
import type { Matcher } from './match.ts'
import { notifyPace, type Pace, type PassOutcome, pollPace, wakeable } from './pace.ts'
import { leadPartitions } from './partitions.ts'

export interface DispatcherDeps {
  url: string
  pool: Pool
  queue: Queue
  config: Config
  log: Logger
  matcher: () => Matcher
  /** Where changes come from; our own change log when omitted. Closed when the dispatcher stops. */
  sources?: readonly ChangeSource[]
  /** Told after each committed pass that dispatched something. */
  onDispatched?: (events: ChangeEvent[], jobs: QueuedDelivery[], source: string) => void
  /** This process's runners of `queues`: told at once after a pass enqueued jobs on them. */
  wakeRunners: (queues: ReadonlySet<string>) => void
  /** Free slots of this process's plain-queue runners, for jobs inserted already active. */
  leaseSlots?: LeaseSlots
}

export interface Dispatcher {
  readonly listener: Listener
  /** Milliseconds since our own change log's last successful pass, or undefined before the first. */
  lastPassAgeMs(): number | undefined
  /** Backlog, lag and error rate of every source (docs/sources.md). */
  health(): Promise<SourceHealth[]>
  stop(): Promise<void>
}

// Pruning (ledger, a source's own log) runs after a successful pass, at most this often.
const tidyEveryMs = 60_000
// A claim that met changes another transaction is claiming tries again after this long.
const busyRetryMs = 20
// Held longer than this, a change is not a hand-over but a claimer that hangs (its connection
// cut mid-pass, not yet noticed by the server): claims then skip held changes for heldSkipMs,
// so one stuck session cannot stop its partitions (docs/operations.md, several workers).
const heldPatienceMs = 2_000
const heldSkipMs = 30_000

// The dispatch commit does not wait for its WAL flush, which was the largest part of the time
// between an application's commit and its delivery (docs/performance.md). A server crash can take
// back only whole dispatch transactions of its last few hundred milliseconds, and with them every
// later one: those changes are claimed again in order, so a delivery made meanwhile is made again,
// which at-least-once allows.
const dispatchCommit = { asyncCommit: true }

/**
 * One dispatch transaction: claim, enqueue one job per (observer, action), dead-letter the
 * malformed, record. Jobs this process has free slots for start while it commits (lease.ts);
 * `queued` are the others, which runners fetch.
 */
async function dispatchBatch(
  deps: DispatcherDeps & { statements: Statements },
  source: ChangeSource,
  scope: PartitionScope,
  oneByOne: boolean,
) {
  const { dispatchBatchSize: rows, dispatchBatchBytes: bytes, maxChangeBytes: changeBytes } = deps.config
  const limits = { rows, bytes, changeBytes }
  await source.read?.(deps.pool, limits)
  const committed = Promise.withResolvers<boolean>()
  const pass = withTransaction(
    deps.pool,
    async (client, later) => {
      const batch = await source.claim(client, limits, scope)
      if (!batch) return undefined
      let jobs: QueuedDelivery[]
      let queued: QueuedDelivery[]
      if (oneByOne) {
        const each = await enqueueEach(deps, client, batch.events, source.name)
        jobs = each.jobs
        queued = jobs
        batch.malformed.push(...each.malformed)
      } else {
        const match = deps.matcher()
        jobs = batch.events.flatMap((e) => match(e, source.name))
        queued = deps.leaseSlots
          ? insertLeased(client, later, deps.statements, deps.leaseSlots, jobs, committed.promise)
          : jobs
        if (queued.length > 0) {
          await enqueue(deps.queue, client, queued, { announce: false, statements: deps.statements })
        }
      }
      for (const m of batch.malformed) {
        const id = stableUuid('observers.malformed', source.name, m.key)
        await deadLetterMalformed(deps.queue, client, {
          ...m,
          id,
          source: source.name,
          error: `${m.code}: ${m.error}`,
        })
      }
      await batch.record(client)
      return { batch, jobs, queued }
    },
    dispatchCommit,
  )
  try {
    const result = await pass
    committed.resolve(true)
    return result
  } catch (err) {
    committed.resolve(false)
    throw err
  }
}

/**
 * Announces new jobs to other workers after the dispatch commit, one statement at a time, the
 * queues of passes committed meanwhile gathered into the next. Outside the dispatch transaction,
 * the NOTIFY's wait for other notifying commits delays no dispatch and no local delivery.
 */
function announcer(deps: DispatcherDeps) {
  const waiting = new Set<string>()
  let sending = false
  const send = async () => {
    sending = true
    while (waiting.size > 0) {
      const queues = [...waiting]
      waiting.clear()
      await announce(deps.pool, queues).catch((err: unknown) => {
        deps.log.warn(
          { code: ErrorCode.DatabaseError, error: coerceError(err).message },
          `${ErrorCode.DatabaseError}: could not announce new jobs to other workers; they find them at their next poll`,
        )
      })
    }
    sending = false
  }
  return (queues: ReadonlySet<string>) => {
    for (const q of queues) waiting.add(q)
    if (!sending) void send()
  }
}

/**
 * After a committed pass: wake this process's runners of the jobs it queued (not those it
 * started itself), announce them to other workers unless there are none, report the dead-lettered entries and what was dispatched. A
 * worker leading every partition of our change log is the only one dispatching it, so no other
 * worker of the same configuration runs; other sources may be dispatched by any worker.
 */
function afterPass(
  deps: DispatcherDeps,
  source: ChangeSource,
  scope: PartitionScope,
  announceOthers: (queues: ReadonlySet<string>) => void,
  counts: SourceStats,
  batch: ClaimedBatch,
  jobs: QueuedDelivery[],
  queued: QueuedDelivery[],
) {
  if (queued.length > 0) {
    const queues = new Set(queued.map((j) => j.queue))
    deps.wakeRunners(queues)
    const alone = source.wake === 'notify' && scope.led.length === scope.count
    if (!alone) announceOthers(queues)
  }
  for (const m of batch.malformed) {
    deps.log.error(
      { code: m.code, source: source.name, key: m.key, entity: m.entity },
      `${m.code}: change-log entry ${m.key} of source "${source.name}" is malformed and was dead-lettered: ${m.error}`,
    )
  }
  counts.malformed(batch.malformed.length)
  if (batch.events.length > 0) deps.onDispatched?.(batch.events, jobs, source.name)
}

/** Pruning (ledger, a source's own log) at most every tidyEveryMs; a failure only waits for the next turn. */
function throttledTidy(deps: DispatcherDeps, source: ChangeSource): () => Promise<void> {
  let tidiedAt = Date.now()
  return async () => {
    if (!source.tidy || Date.now() - tidiedAt < tidyEveryMs) return
    tidiedAt = Date.now()
    await source.tidy(deps.pool).catch((err: unknown) => {
      deps.log.warn(
        { code: ErrorCode.DatabaseError, source: source.name, error: coerceError(err).message },
        `${ErrorCode.DatabaseError}: pruning source "${source.name}" failed; will try again`,
      )
    })
  }
}

/** Doubling waits after failed passes, from 100 ms up to 10 s; a committed pass starts over. */
function backoff(signal: AbortSignal) {
  let ms = 100
  return {
    reset() {
      ms = 100
    },
    async wait() {
      await delay(ms, undefined, { signal }).catch(() => {})
      ms = Math.min(ms * 2, 10_000)
    },
  }
}

/**
 * Moves changes from each source into queue jobs, one loop per source; each source's pace
 * decides how its loop waits (pace.ts). Our change log is led partition by partition through
 * the listener's session locks and woken by NOTIFY; other sources are polled, each led by a
 * transaction-scoped advisory lock taken in its claim.
 */
export function startDispatcher(deps: DispatcherDeps): Dispatcher {
  const { config, log } = deps
  const sources = deps.sources ?? [changeLogSource(config.dispatchPollMs, config.preparedStatements)]
  const stopping = new AbortController()
  const { signal } = stopping
  const wake = wakeable(signal, config.dispatchPollMs)
  const listener = startListener(deps.url, log, wake.nudge)
  const partitions = leadPartitions(listener, config.dispatchPartitions, log)
  const stats = new Map(sources.map((s) => [s.name, sourceStats()]))
  const announceOthers = announcer(deps)
  const passDeps = { ...deps, statements: statements(config.preparedStatements) }
  let lastPassAt: number | undefined

  const paceOf = (source: ChangeSource): Pace =>
    source.wake === 'notify'
      ? notifyPace({ listener, partitions, wake, pollMs: config.dispatchPollMs }, signal)
      : pollPace(source.pollMs, signal)

  const runSource = async (source: ChangeSource, counts: SourceStats) => {
    const pace = paceOf(source)
    const tidy = throttledTidy(deps, source)
    const failures = backoff(signal)
    // Set when a batch failed on one change's data: the next pass goes change by change.
    let oneByOne = false
    const own = source.wake === 'notify'
    let busySince: number | undefined
    let skipHeldUntil = 0
    while (!signal.aborted) {
      const led = await pace.begin()
      const scope = led && performance.now() < skipHeldUntil ? { ...led, skipHeld: true } : led
      // Leading no partition is a healthy state for one of several workers.
      if (!scope) {
        if (own) lastPassAt = Date.now()
        continue
      }
      let outcome: PassOutcome
      try {
        const result = await dispatchBatch(passDeps, source, scope, oneByOne)
        busySince = undefined
        oneByOne = false
        failures.reset()
        counts.passed()
        if (own) lastPassAt = Date.now()
        if (result) {
          afterPass(deps, source, scope, announceOthers, counts, result.batch, result.jobs, result.queued)
          await tidy()
        }
        const { events = [], malformed = [], more = false } = result?.batch ?? {}
        outcome = { claimed: events.length + malformed.length, more }
      } catch (err) {
        // Another transaction holds changes this claim would take (a hand-over): not a failure.
        if (isClaimBusy(err)) {
          busySince ??= performance.now()
          if (performance.now() - busySince > heldPatienceMs) {
            skipHeldUntil = performance.now() + heldSkipMs
            log.warn(
              { source: source.name, held_ms: Math.round(performance.now() - busySince) },
              'changes held by another transaction for over 2 s: claims skip held changes for 30 s',
            )
            busySince = undefined
          }
          await delay(busyRetryMs, undefined, { signal }).catch(() => {})
          continue
        }
        const message = describeError(err)
        counts.failed(message)
        log.error(
          { code: ErrorCode.DatabaseError, source: source.name, error: message },
          `${ErrorCode.DatabaseError}: dispatch from source "${source.name}" failed; will retry`,
        )
        if (!oneByOne && isDataError(err)) oneByOne = true
        else await failures.wait()
        continue
      }
      await pace.after(outcome)
    }
  }
  const running = sources.map((s) => runSource(s, stats.get(s.name)!))

  return {
    listener,
    lastPassAgeMs: () => (lastPassAt === undefined ? undefined : Date.now() - lastPassAt),
    health: () =>
      Promise.all(
        sources.map((s) =>
          sourceHealth(s, deps.pool, { backlogWarn: config.backlogWarn, stats: stats.get(s.name) }),
        ),
      ),
    async stop() {
      stopping.abort()
      await Promise.all(running)
      await listener.close()
      await Promise.all(sources.map((s) => s.close()))
    },
  }
}
