import { setTimeout as delay } from 'node:timers/promises'
import type { Config } from '../config.ts'
import { type Pool, withTransaction } from '../db/pool.ts'
import { claimChanges } from '../db/queries/change-log.ts'
import { coerceError, ErrorCode } from '../errors.ts'
import type { ChangeEvent } from '../event.ts'
import type { Logger } from '../log.ts'
import { enqueue, type Queue, type QueuedDelivery } from '../queue/boss.ts'
import { type Listener, startListener } from './listener.ts'
import type { Matcher } from './match.ts'

export interface DispatcherDeps {
  url: string
  pool: Pool
  queue: Queue
  config: Config
  log: Logger
  matcher: () => Matcher
  onDispatched?: (events: ChangeEvent[], jobs: QueuedDelivery[]) => void
}

export interface Dispatcher {
  readonly listener: Listener
  /** Milliseconds since the last successful dispatch pass, or undefined before the first. */
  lastPassAgeMs(): number | undefined
  stop(): Promise<void>
}

/**
 * Moves change-log rows into queue jobs: claims a batch, matches each change against the
 * observers, enqueues one job per (observer, action), marks the rows dispatched, all in one
 * transaction. NOTIFY wakes it; a poll every dispatchPollMs is the backstop.
 */
export function startDispatcher(deps: DispatcherDeps): Dispatcher {
  const { config, log } = deps
  const stopping = new AbortController()
  let wake: (() => void) | undefined
  let pending = false
  let lastPassAt: number | undefined
  const nudge = () => {
    pending = true
    wake?.()
  }
  const listener = startListener(deps.url, log, nudge)
  stopping.signal.addEventListener('abort', () => wake?.(), { once: true })

  const dispatchBatch = () =>
    withTransaction(deps.pool, async (client) => {
      const events = await claimChanges(client, config.dispatchBatchSize)
      if (events.length === 0) return 0
      const match = deps.matcher()
      const jobs = events.flatMap((e) => match(e))
      if (jobs.length > 0) await enqueue(deps.queue, client, jobs)
      deps.onDispatched?.(events, jobs)
      return events.length
    })

  const waitForWake = async () => {
    if (pending) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, config.dispatchPollMs)
      wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })
    wake = undefined
  }

  const loop = async () => {
    let errorDelayMs = 100
    while (!stopping.signal.aborted) {
      pending = false
      if (await listener.tryLead()) {
        try {
          const n = await dispatchBatch()
          lastPassAt = Date.now()
          errorDelayMs = 100
          if (n >= config.dispatchBatchSize) continue
        } catch (err) {
          log.error(
            { code: ErrorCode.DatabaseError, error: coerceError(err).message },
            `${ErrorCode.DatabaseError}: dispatch failed; will retry`,
          )
          await delay(errorDelayMs, undefined, { signal: stopping.signal }).catch(() => {})
          errorDelayMs = Math.min(errorDelayMs * 2, 10_000)
          continue
        }
      } else {
        lastPassAt = Date.now()
      }
      await waitForWake()
    }
  }
  const running = loop()

  return {
    listener,
    lastPassAgeMs: () => (lastPassAt === undefined ? undefined : Date.now() - lastPassAt),
    async stop() {
      stopping.abort()
      await running
      await listener.close()
    },
  }
}
