import { type Pool, withTransaction } from './db/pool.ts'
import { selectChanges } from './db/queries/change-log.ts'
import type { Matcher } from './dispatch/match.ts'
import { ConfigError, ErrorCode } from './errors.ts'
import { enqueue, type Queue, type QueuedDelivery } from './queue/boss.ts'

/** Which change-log rows to dispatch again: a time, a seq range, or both. */
export interface ReplayRange {
  since?: Date | undefined
  fromSeq?: number | undefined
  toSeq?: number | undefined
  /** Only this observer's deliveries. */
  observer?: string | undefined
}

export interface ReplayResult {
  changes: number
  deliveries: number
}

/** `a..b`, `a..` (to the end) or `a` (one change); bounds are inclusive. */
export function parseSeqRange(text: string): { fromSeq: number; toSeq: number | undefined } {
  const m = /^(\d+)(?:\.\.(\d*))?$/.exec(text.trim())
  const from = Number(m?.[1])
  const to = m?.[2] === undefined ? from : m[2] === '' ? undefined : Number(m[2])
  if (!m || !Number.isSafeInteger(from) || (to !== undefined && (!Number.isSafeInteger(to) || to < from))) {
    throw new ConfigError(
      ErrorCode.InvalidConfig,
      `--seq must look like 100..200, 100.. or 100; got "${text}"`,
    )
  }
  return { fromSeq: from, toSeq: to }
}

/** How many rows the range selects, for a progress bar. */
export async function countReplayRange(pool: Pool, range: ReplayRange): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    `select count(*) as n from observers.change_log
      where ($1::bigint is null or seq >= $1) and ($2::bigint is null or seq <= $2)
        and ($3::timestamptz is null or created_at >= $3)`,
    [range.fromSeq ?? null, range.toSeq ?? null, range.since ?? null],
  )
  return Number(rows[0]?.n ?? 0)
}

export interface ReplayDeps {
  pool: Pool
  queue: Queue
  matcher: Matcher
}

/**
 * Splits a page's deliveries into rounds holding at most one delivery per ordering key, in
 * commit order. Jobs inserted in one transaction share its created_on, which pg-boss's FIFO
 * keys order by, so each round needs a transaction of its own.
 */
function rounds(jobs: QueuedDelivery[]): QueuedDelivery[][] {
  const out: QueuedDelivery[][] = []
  const perKey = new Map<string, number>()
  for (const job of jobs) {
    const round = job.key === undefined ? 0 : (perKey.get(job.key) ?? 0)
    if (job.key !== undefined) perKey.set(job.key, round + 1)
    const bucket = out[round] ?? []
    out[round] = bucket
    bucket.push(job)
  }
  return out
}

/**
 * Runs the changes of `range` through the matcher again and enqueues their deliveries with
 * fresh job ids (a first dispatch's ids would make the insert a no-op). Delivery ids stay
 * the same, so receivers that dedupe on webhook-id see a replay as a repeat. A page of
 * `batchSize` changes takes one transaction, or one per change of its busiest ordered row.
 */
export async function replayChanges(
  deps: ReplayDeps,
  range: ReplayRange,
  opts: { batchSize?: number; onProgress?: (changes: number) => void } = {},
): Promise<ReplayResult> {
  const limit = opts.batchSize ?? 500
  const result: ReplayResult = { changes: 0, deliveries: 0 }
  let afterSeq = 0
  for (;;) {
    const events = await selectChanges(deps.pool, {
      afterSeq,
      limit,
      ...(range.since ? { since: range.since } : {}),
      ...(range.fromSeq === undefined ? {} : { fromSeq: range.fromSeq }),
      ...(range.toSeq === undefined ? {} : { toSeq: range.toSeq }),
    })
    if (events.length === 0) return result
    const jobs = events
      .flatMap((e) => deps.matcher(e))
      .filter((j) => range.observer === undefined || j.delivery.observer === range.observer)
      .map((j) => ({ ...j, jobId: undefined }))
    for (const round of rounds(jobs)) {
      await withTransaction(deps.pool, (client) => enqueue(deps.queue, client, round))
    }
    result.changes += events.length
    result.deliveries += jobs.length
    opts.onProgress?.(result.changes)
    afterSeq = events.at(-1)?.seq ?? afterSeq
    if (events.length < limit) return result
  }
}
