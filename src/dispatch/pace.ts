import { setTimeout as delay } from 'node:timers/promises'
import { allPartitions, type PartitionScope } from '../db/queries/change-log.ts'
import type { Listener } from './listener.ts'
import type { Partitions } from './partitions.ts'

/** What a committed pass claimed, and whether its limits (not the source) ended it. */
export interface PassOutcome {
  claimed: number
  more: boolean
}

/**
 * How one source's dispatch loop waits: each kind of source owns its pace, and the loop
 * (dispatcher.ts) only claims, reports and backs off after errors.
 */
export interface Pace {
  /** Before a pass: what this worker may claim now; undefined when nothing, after waiting for a reason to look again. */
  begin(): Promise<PartitionScope | undefined>
  /** After a committed pass: waits as long as this source wants before the next. */
  after(pass: PassOutcome): Promise<void>
}

/** A polled source: again at once while there is more, else after pollMs. Its claim leads it. */
export function pollPace(pollMs: number, signal: AbortSignal): Pace {
  return {
    begin: async () => allPartitions,
    async after({ more }) {
      if (!more) await delay(pollMs, undefined, { signal }).catch(() => {})
    },
  }
}

/** Wake-ups of our own change log: NOTIFY nudges, a poll every pollMs is the backstop. */
export interface Wakeable {
  nudge(): void
  /** Forgets nudges so far: the pass about to start sees what they announced. */
  begin(): void
  /** Returns at the first nudge since `begin`, or after pollMs, or when stopping. */
  wait(): Promise<void>
}

export function wakeable(signal: AbortSignal, pollMs: number): Wakeable {
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
      if (pending || signal.aborted) return
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

// Awake, the dispatcher polls every awakePollMs and commits send no NOTIFY, which spares them a
// lock that serialises notifying commits (migrations/0004_dispatch_queue.sql); asleep, each
// change is claimed as soon as its NOTIFY arrives instead of at the next poll. The rate of changes
// over the last rateWindowMs chooses: at awakeRate or more the committers' lock costs more than
// the wait for a poll, below sleepRate each change would mostly wait for one. Between the two the
// dispatcher keeps its state, so a rate near either never flips it at every pass. A single pass of
// awakeBatch changes or more (a statement of many rows) wakes it as well, until a poll finds
// nothing (docs/performance.md).
const awakeBatch = 8
const awakePollMs = 5
const rateWindowMs = 100
const awakeRate = 800
const sleepRate = 400
// Empty passes double the poll, but within a second of the last claim no further than this:
// traffic that just paused is likely to resume, and its next change should not wait a second.
const recentPollMs = 50
const recentMs = 1_000

/**
 * Our own change log, led partition by partition through the listener. Caught up or at a trickle,
 * the dispatcher sleeps until a NOTIFY once commits are sure to send one (the sleep lock, held by
 * this worker or another); busy, it stays awake and polls, and commits send nothing. A long
 * transaction that keeps it from sleeping makes it poll ever less often, up to pollMs (50 ms
 * within a second of its last claim). `now` is the clock the rate is measured on.
 */
export function notifyPace(
  deps: { listener: Listener; partitions: Partitions; wake: Wakeable; pollMs: number; now?: () => number },
  signal: AbortSignal,
): Pace {
  const { listener, partitions, wake } = deps
  const now = deps.now ?? (() => performance.now())
  let idlePollMs = awakePollMs
  let lastClaimAt = 0
  // Claims of the last rateWindowMs, oldest first: [when, changes].
  const claims: Array<[number, number]> = []
  let windowClaimed = 0
  const ratePerSecond = (at: number) => {
    for (let first = claims[0]; first && first[0] <= at - rateWindowMs; first = claims[0]) {
      claims.shift()
      windowClaimed -= first[1]
    }
    return (windowClaimed * 1000) / rateWindowMs
  }
  // Commits notify: this worker holds the sleep lock, or saw another worker hold it.
  let quiet = false
  return {
    async begin() {
      wake.begin()
      await listener.tryLead()
      const scope = await partitions.lead()
      if (scope.led.length > 0) return scope
      await wake.wait()
      return undefined
    },
    async after({ claimed, more }) {
      const at = now()
      if (claimed > 0) {
        lastClaimAt = at
        claims.push([at, claimed])
        windowClaimed += claimed
      }
      if (more) return
      const rate = ratePerSecond(at)
      if (claimed >= awakeBatch || rate >= awakeRate) {
        await listener.stayAwake()
        quiet = false
      }
      if (quiet) {
        await wake.wait()
        // Another worker's sleep lock may have gone since (its NOTIFY woke us): look again.
        if (!listener.asleep) quiet = false
        return
      }
      // Caught up, or a trickle: sleep once no commit can skip its NOTIFY, after one more pass.
      const trickle = rate < sleepRate && claimed < awakeBatch
      if ((claimed === 0 || trickle) && (await listener.trySleep())) {
        quiet = true
        return
      }
      const ceiling = at - lastClaimAt < recentMs ? Math.min(recentPollMs, deps.pollMs) : deps.pollMs
      idlePollMs = claimed > 0 ? awakePollMs : Math.min(idlePollMs * 2, ceiling)
      await delay(idlePollMs, undefined, { signal }).catch(() => {})
    },
  }
}
