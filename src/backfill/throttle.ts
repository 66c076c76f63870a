import type { Queryable } from '../db/pool.ts'

/**
 * The least pause after a page, as a multiple of the page's time: pages hold the database at most
 * a quarter of the time, however little the application writes.
 */
export const pauseShare = 3

/** The most: pages run at least 5 % of the time, so a backfill always ends. */
export const maxPauseShare = 19

/** The share of the application's write transactions a backfill may cost, averaged over its pages and pauses. */
export const costShare = 0.05

/** Weight of the newest page in the running estimate of how much a page slows the application. */
const weight = 0.2

/** Fewer writes than this in a pause say nothing about the application's rate (it is idle). */
const minWrites = 10

/** A point in time and the server's transaction counter then. */
export interface Mark {
  at: number
  xid: number
}

/**
 * The server's transaction counter: one past the newest write transaction that ended, so its
 * rise over an interval is the write transactions that ended in it. Read without starting one.
 */
export async function mark(db: Queryable): Promise<Mark> {
  const { rows } = await db.query<{ xid: string }>(
    'select pg_snapshot_xmax(pg_current_snapshot())::text as xid',
  )
  return { at: performance.now(), xid: Number(rows[0]?.xid ?? 0) }
}

/**
 * Paces a backfill by what its pages cost the application. Each cycle the backfill's page runs
 * from `start` to `end` and its pause from `end` to `next`; the server's write transactions
 * counted in each window (less the page's own) give the application's rate during the page and
 * while it is left alone. If a page slows it by a share `d`, a page of `t` ms followed by a pause
 * of `p` ms costs it `d·t / (t + p)` of its writes: the pause is chosen so that this stays under
 * `costShare`, i.e. `p = t · (d / costShare − 1)`, never less than `pauseShare · t` or `pause_ms`,
 * never more than `maxPauseShare · t`. An application that does not write costs nothing, and
 * the backfill goes at the floor's pace.
 */
export class Throttle {
  /** Running estimate of `d`, from 0 (pages do not slow the application) to 1 (they stop it). */
  slowdown = 0

  /** The pause after a page of `pageMs`; `pauseMs` is the floor, 0 turns throttling off. */
  pause(pauseMs: number, pageMs: number): number {
    if (pauseMs === 0) return 0
    const share = Math.min(maxPauseShare, Math.max(pauseShare, this.slowdown / costShare - 1))
    return Math.max(pauseMs, Math.round(pageMs * share))
  }

  /** One cycle measured: the page ran from `start` to `end`, the pause from `end` to `next`. */
  observe(start: Mark, end: Mark, next: Mark): void {
    const pageMs = end.at - start.at
    const pauseMs = next.at - end.at
    if (pageMs <= 0 || pauseMs <= 0) return
    const inPause = next.xid - end.xid
    // The page's own transaction is one of those counted while it ran.
    const inPage = Math.max(0, end.xid - start.xid - 1)
    const d = inPause < minWrites ? 0 : Math.min(1, Math.max(0, 1 - inPage / pageMs / (inPause / pauseMs)))
    this.slowdown += weight * (d - this.slowdown)
  }
}
