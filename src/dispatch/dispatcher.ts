import { setTimeout as delay } from 'node:timers/promises'
import type { Config } from '../config/config.ts'
import { type Pool, withTransaction } from '../db/pool.ts'
import { coerceError, describeError, ErrorCode } from '../errors/errors.ts'
import type { ChangeEvent } from '../event/event.ts'
import type { Logger } from '../log/log.ts'
import { deadLetterMalformed, enqueue, type Queue, type QueuedDelivery } from '../queue/boss.ts'
import { changeLogSource } from '../sources/changelog.ts'
import { type SourceStats, sourceHealth, sourceStats } from '../sources/health.ts'
import { stableUuid } from '../sources/ids.ts'
import type { ChangeSource, ClaimedBatch, SourceHealth } from '../sources/types.ts'
import { enqueueEach, isDataError } from './isolate.ts'
import { type Listener, startListener } from './listener.ts'
import type { Matcher } from './match.ts'

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

// A pass that claims this many changes means commits arrive faster than NOTIFYs are worth
// their cost to the committers: the dispatcher stays awake and polls every awakePollMs, and
// commits stop notifying (migrations/0004_dispatch_queue.sql, docs/performance.md).
const awakeBatch = 8
const awakePollMs = 5

/** One dispatch transaction: claim, enqueue one job per (observer, action), dead-letter the malformed, record. */
async function dispatchBatch(deps: DispatcherDeps, source: ChangeSource, oneByOne = false) {
  const { dispatchBatchSize: rows, dispatchBatchBytes: bytes, maxChangeBytes: changeBytes } = deps.config
  const limits = { rows, bytes, changeBytes }
  await source.read?.(deps.pool, limits)
  return withTransaction(deps.pool, async (client) => {
    const batch = await source.claim(client, limits)
    if (!batch) return undefined
    let jobs: QueuedDelivery[]
    if (oneByOne) {
      const each = await enqueueEach(deps, client, batch.events, source.name)
      jobs = each.jobs
      batch.malformed.push(...each.malformed)
    } else {
      const match = deps.matcher()
      jobs = batch.events.flatMap((e) => match(e, source.name))
      if (jobs.length > 0) await enqueue(deps.queue, client, jobs)
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
    return { batch, jobs }
  })
}

/** After a committed pass: report the dead-lettered entries and what was dispatched. */
function afterPass(
  deps: DispatcherDeps,
  source: string,
  counts: SourceStats,
  batch: ClaimedBatch,
  jobs: QueuedDelivery[],
) {
  for (const m of batch.malformed) {
    deps.log.error(
      { code: m.code, source, key: m.key, entity: m.entity },
      `${m.code}: change-log entry ${m.key} of source "${source}" is malformed and was dead-lettered: ${m.error}`,
    )
  }
  counts.malformed(batch.malformed.length)
  if (batch.events.length > 0) deps.onDispatched?.(batch.events, jobs, source)
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

/** Wake-ups for our own source: NOTIFY nudges, a poll every pollMs is the backstop. */
function wakeable(signal: AbortSignal, pollMs: number) {
  let wake: (() => void) | undefined
  let pending = false
  signal.addEventListener('abort', () => wake?.(), { once: true })
  return {
    nudge() {
      pending = true
      wake?.()
    },
    begin() {
      pending = false
    },
    async wait() {
      if (pending) return
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMs)
        wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      wake = undefined
    },
  }
}

/**
 * Moves changes from each source into queue jobs, one loop per source. Our change log is led
 * through the listener's advisory lock and woken by NOTIFY; other sources are polled, each led
 * by a transaction-scoped advisory lock taken in its claim.
 */
export function startDispatcher(deps: DispatcherDeps): Dispatcher {
  const { config, log } = deps
  const sources = deps.sources ?? [changeLogSource(config.dispatchPollMs, config.preparedStatements)]
  const stopping = new AbortController()
  const { signal } = stopping
  const own = wakeable(signal, config.dispatchPollMs)
  const listener = startListener(deps.url, log, own.nudge)
  const stats = new Map(sources.map((s) => [s.name, sourceStats()]))
  let lastPassAt: number | undefined

  const runSource = async (source: ChangeSource, counts: SourceStats) => {
    const notify = source.wake === 'notify'
    const tidy = throttledTidy(deps, source)
    let errorDelayMs = 100
    // Set when a batch failed on one change's data: the next pass goes change by change.
    let oneByOne = false
    let idlePollMs = awakePollMs
    while (!signal.aborted) {
      if (notify) own.begin()
      let claimed = 0
      try {
        const lead = !notify || (await listener.tryLead())
        const result = lead ? await dispatchBatch(deps, source, oneByOne) : undefined
        oneByOne = false
        counts.passed()
        if (notify) lastPassAt = Date.now()
        errorDelayMs = 100
        if (result) {
          claimed = result.batch.events.length + result.batch.malformed.length
          afterPass(deps, source.name, counts, result.batch, result.jobs)
          await tidy()
          if (result.batch.more) continue
        }
      } catch (err) {
        const message = describeError(err)
        counts.failed(message)
        log.error(
          { code: ErrorCode.DatabaseError, source: source.name, error: message },
          `${ErrorCode.DatabaseError}: dispatch from source "${source.name}" failed; will retry`,
        )
        if (!oneByOne && isDataError(err)) {
          oneByOne = true
          continue
        }
        await delay(errorDelayMs, undefined, { signal }).catch(() => {})
        errorDelayMs = Math.min(errorDelayMs * 2, 10_000)
        continue
      }
      if (!notify) {
        await delay(source.pollMs, undefined, { signal }).catch(() => {})
        continue
      }
      if (listener.leader) {
        if (claimed >= awakeBatch) await listener.stayAwake()
        if (!listener.asleep) {
          // Caught up: sleep once the lock shows no commit skipped its NOTIFY, after one more pass.
          if (claimed === 0 && (await listener.trySleep())) continue
          // A long transaction that captured a change keeps the lock from us: poll ever less often.
          idlePollMs = claimed > 0 ? awakePollMs : Math.min(idlePollMs * 2, config.dispatchPollMs)
          await delay(idlePollMs, undefined, { signal }).catch(() => {})
          continue
        }
      }
      await own.wait()
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
