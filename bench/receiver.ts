import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'

/**
 * The webhook receiver: answers 200 at once and records, per row id, when the first delivery
 * arrived (performance.now(), the clock the load generator stamps commits with).
 */
export interface Receiver {
  readonly url: string
  /** First arrival per row id since the last reset. */
  readonly arrivals: Map<number, number>
  /** Every request since the last reset, duplicates included. */
  readonly total: number
  /** Deliveries of warm-up rows since the last reset. */
  readonly warmUps: number
  readonly duplicates: number
  reset(): void
  /**
   * Resolves with the last first-arrival time once `count` distinct ids arrived. Slowness is never
   * an error; throws only when nothing new arrives for `stallMs` (the pipeline is broken).
   */
  waitFor(count: number, stallMs: number): Promise<number>
  close(): Promise<void>
}

export const warmUpNote = 'warm-up'

interface BenchRow {
  id?: unknown
  note?: unknown
}

/**
 * The default webhook body is the event; its row image carries the bench row's id. Warm-up rows
 * are counted apart, so a late warm-up delivery never stands in for a measured one.
 */
function rowId(body: string): number | 'warm-up' | undefined {
  const event = JSON.parse(body) as { after?: BenchRow; before?: BenchRow }
  const row = event.after ?? event.before
  if (row?.note === warmUpNote) return warmUpNote
  const id = Number(row?.id)
  return Number.isFinite(id) ? id : undefined
}

export class MissingDeliveriesError extends Error {}

/** What arrived since the last reset. */
class Tally {
  arrivals = new Map<number, number>()
  total = 0
  warmUps = 0
  duplicates = 0
  /** First-arrival time of the latest new id. */
  last = 0

  record(at: number, body: string): void {
    this.total++
    const id = rowId(body)
    if (id === warmUpNote) this.warmUps++
    if (typeof id !== 'number') return
    if (this.arrivals.has(id)) this.duplicates++
    else {
      this.arrivals.set(id, at)
      this.last = at
    }
  }
}

async function waitForCount(tally: () => Tally, count: number, stallMs: number): Promise<number> {
  let seen = tally().arrivals.size
  let progressAt = performance.now()
  while (tally().arrivals.size < count) {
    const size = tally().arrivals.size
    if (size > seen) {
      seen = size
      progressAt = performance.now()
    } else if (performance.now() - progressAt > stallMs) {
      throw new MissingDeliveriesError(
        `${size} of ${count} deliveries arrived, then none for ${Math.round(stallMs / 1000)} s`,
      )
    }
    await delay(5)
  }
  return tally().last
}

/**
 * `delayMs` > 0 makes every answer wait that long (an endpoint that does some work), so the
 * effect of batching on slow destinations shows; arrival is still stamped on receipt.
 */
export async function startReceiver(delayMs = 0): Promise<Receiver> {
  let tally = new Tally()
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const at = performance.now()
      if (delayMs > 0) setTimeout(() => res.writeHead(200).end(), delayMs)
      else res.writeHead(200).end()
      tally.record(at, Buffer.concat(chunks).toString('utf8'))
    })
  })
  // Longer than any pause between scenarios, so idle keep-alive sockets are not closed under a request.
  server.keepAliveTimeout = 120_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/hook`,
    get arrivals() {
      return tally.arrivals
    },
    get total() {
      return tally.total
    },
    get warmUps() {
      return tally.warmUps
    },
    get duplicates() {
      return tally.duplicates
    },
    reset: () => {
      tally = new Tally()
    },
    waitFor: (count, stallMs) => waitForCount(() => tally, count, stallMs),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
