import type pg from 'pg'
import type { Statements } from '../db/statements.ts'
import { coerceError, ErrorCode } from '../errors/errors.ts'
import type { Logger } from '../log/log.ts'
import type { Queue } from '../queue/boss.ts'

/** Every worker's cue to re-read the control tables (pause and breaker state). */
export const controlChannel = 'observers_control'

const refreshMs = 2_000

/** What every control that holds fetched jobs (pause, breakers, rate limits) works with. */
export interface HoldDeps {
  boss: Queue
  pool: pg.Pool
  statements: Statements
  log: Logger
  /** LISTEN for changes made by other workers; false behind a transaction-mode pooler. */
  listen: boolean
  /** How long a held job is kept waiting at most. */
  retentionSeconds: number
  /** Wakes the runners of queues whose held jobs were released or are due. */
  wake(queue: string): void
}

export interface Refresher {
  /** Reads now; reads run one after another, and each caller's read starts after it called. */
  refresh(): Promise<void>
  stop(): Promise<void>
}

/**
 * Keeps a worker's copy of a control table current: read every 2 s and on each NOTIFY of
 * `controlChannel` (when `listen`), a failed read logged as `what` and tried again later.
 */
export async function startRefresher(
  read: () => Promise<void>,
  o: { boss: Queue; log: Logger; listen: boolean; what: string },
): Promise<Refresher> {
  let tail: Promise<unknown> = Promise.resolve()
  const refresh = () => {
    const run = tail.then(read)
    tail = run.catch(() => {})
    return run
  }
  const refreshQuietly = () =>
    void refresh().catch((e: unknown) =>
      o.log.error(
        { err: coerceError(e), code: ErrorCode.DatabaseError },
        `${ErrorCode.DatabaseError}: could not read ${o.what}`,
      ),
    )
  const timer = setInterval(refreshQuietly, refreshMs)
  timer.unref()
  const listener = o.listen
    ? await o.boss
        .getDb()
        .listen?.(controlChannel, refreshQuietly, refreshQuietly)
        .catch(() => undefined)
    : undefined
  return {
    refresh,
    async stop() {
      clearInterval(timer)
      await listener?.close()
    },
  }
}
