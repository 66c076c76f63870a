import { type Pool, withTransaction } from '../db/pool.ts'
import { deliveriesInSeqRange } from '../db/queries/deliveries.ts'
import type { Matcher } from '../dispatch/match.ts'
import { ConfigError, ErrorCode, InputError } from '../errors/errors.ts'
import type { ChangeEvent } from '../event/event.ts'
import type { ActionConfig } from '../observers/types.ts'
import { enqueue, type Queue, type QueuedDelivery } from '../queue/boss.ts'
import type { History, HistoryWindow } from '../sources/types.ts'

/** Which entries of a source to dispatch again: a time window, a seq range, or both. */
export interface ReplayRange extends HistoryWindow {
  /** The source whose entries are replayed; our own change log (`changelog`) by default. */
  source: string
  /** Only this observer's deliveries. */
  observer?: string | undefined
  /** Only deliveries whose last outcome was a failure (dead-lettered or given up). */
  onlyFailed?: boolean | undefined
}

/** Where a replay sends: one observer's action, and how many deliveries it gets. */
export interface ReplayDestination {
  observer: string
  action_index: number
  type: string
  destination: string
  deliveries: number
  already_delivered: number
}

export interface ReplayResult {
  changes: number
  /** Sent, or for a dry run, that would be sent. */
  deliveries: number
  /** Acknowledged before (the delivery record): skipped, unless included. */
  already_delivered: number
  destinations: ReplayDestination[]
}

/** `a..b`, `a..` (to the end) or `a` (one change); bounds are inclusive. */
export function parseSeqRange(text: string): { fromSeq: number; toSeq: number | undefined } {
  const m = /^(\d+)(?:\.\.(\d*))?$/.exec(text.trim())
  const from = Number(m?.[1])
  const to = m?.[2] === undefined ? from : m[2] === '' ? undefined : Number(m[2])
  if (!m || !Number.isSafeInteger(from) || (to !== undefined && (!Number.isSafeInteger(to) || to < from))) {
    throw new InputError(`--seq must look like 100..200, 100.. or 100; got "${text}"`)
  }
  return { fromSeq: from, toSeq: to }
}

export interface ReplayDeps {
  pool: Pool
  /** Needed to send; a dry run does without. */
  queue?: Queue | undefined
  matcher: Matcher
  /** Where the entries come from. */
  history: History
  /** Names an action's destination (a webhook's URL, an env variable). */
  destination(action: ActionConfig): string
}

export interface ReplayOptions {
  batchSize?: number
  onProgress?: (changes: number) => void
  /** Send deliveries the record shows as delivered too. */
  includeDelivered?: boolean
  /** Count, send nothing. */
  dryRun?: boolean
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

/** A page's deliveries to send, and how many were skipped as delivered before. */
async function planPage(
  deps: ReplayDeps,
  range: ReplayRange,
  opts: ReplayOptions,
  events: ChangeEvent[],
): Promise<{ jobs: QueuedDelivery[]; skipped: QueuedDelivery[] }> {
  const matched = events
    .flatMap((e) => deps.matcher(e, deps.history.source))
    .filter((j) => range.observer === undefined || j.delivery.observer === range.observer)
  if (events.length === 0) return { jobs: [], skipped: [] }
  // The record is looked up by the range of the page's seqs (a source's entry keys).
  let first = Number.POSITIVE_INFINITY
  let last = 0
  for (const e of events) {
    first = Math.min(first, e.seq)
    last = Math.max(last, e.seq)
  }
  const failed = range.onlyFailed ? await deliveriesInSeqRange(deps.pool, first, last, 'failed') : undefined
  const selected = failed ? matched.filter((j) => failed.has(j.delivery.delivery_id)) : matched
  const delivered =
    opts.includeDelivered || selected.length === 0
      ? new Set<string>()
      : await deliveriesInSeqRange(deps.pool, first, last, 'delivered')
  return {
    jobs: selected
      .filter((j) => !delivered.has(j.delivery.delivery_id))
      .map((j) => ({ ...j, jobId: undefined })),
    skipped: selected.filter((j) => delivered.has(j.delivery.delivery_id)),
  }
}

async function send(deps: ReplayDeps, jobs: QueuedDelivery[]) {
  const { queue } = deps
  if (!queue) throw new ConfigError(ErrorCode.InvalidConfig, 'a replay that sends needs the queue')
  for (const round of rounds(jobs)) {
    await withTransaction(deps.pool, (client) => enqueue(queue, client, round))
  }
}

function tally(
  deps: ReplayDeps,
  byKey: Map<string, ReplayDestination>,
  jobs: QueuedDelivery[],
  sent: boolean,
) {
  for (const { delivery } of jobs) {
    const key = `${delivery.observer}\u0000${delivery.action_index}`
    const d = byKey.get(key) ?? {
      observer: delivery.observer,
      action_index: delivery.action_index,
      type: delivery.action.type,
      destination: deps.destination(delivery.action),
      deliveries: 0,
      already_delivered: 0,
    }
    byKey.set(key, d)
    if (sent) d.deliveries++
    else d.already_delivered++
  }
}

/**
 * Runs the entries of `range` through the matcher again and enqueues their deliveries with
 * fresh job ids (a first dispatch's ids would make the insert a no-op). Delivery ids stay
 * the same, so receivers that dedupe on webhook-id see a replay as a repeat; deliveries the
 * record shows as delivered are skipped unless `includeDelivered`. A dry run plans the same
 * pages the same way and sends nothing. A page of `batchSize` entries takes one transaction,
 * or one per change of its busiest ordered row; the next page is read while one is planned.
 */
export async function replayChanges(
  deps: ReplayDeps,
  range: ReplayRange,
  opts: ReplayOptions = {},
): Promise<ReplayResult> {
  const limit = opts.batchSize ?? 500
  const result: ReplayResult = { changes: 0, deliveries: 0, already_delivered: 0, destinations: [] }
  const byKey = new Map<string, ReplayDestination>()
  let next = deps.history.page(undefined, limit)
  for (;;) {
    const page = await next
    const more = page.read >= limit
    if (more) {
      next = deps.history.page(page.lastKey, limit)
      // Awaited on the next turn; until then a failure must not count as unhandled.
      next.catch(() => {})
    }
    const { jobs, skipped } = await planPage(deps, range, opts, page.events)
    if (!opts.dryRun) await send(deps, jobs)
    tally(deps, byKey, jobs, true)
    tally(deps, byKey, skipped, false)
    result.changes += page.events.length
    result.deliveries += jobs.length
    result.already_delivered += skipped.length
    opts.onProgress?.(result.changes)
    if (!more) return { ...result, destinations: [...byKey.values()] }
  }
}
