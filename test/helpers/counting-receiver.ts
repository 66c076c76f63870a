import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Arrival {
  path: string
  body: string
  /** Receiver clock, ms since the epoch, when the request's body had arrived. */
  at: number
}

export interface CountingReceiver {
  url: string
  arrivals: Arrival[]
  /** Most requests held open at once, per path. */
  peak: Map<string, number>
  /** Answers requests from now on with `status` and `headers` instead of 200. */
  answer(fn: (a: Arrival) => { status: number; headers?: Record<string, string> }): void
  close(): Promise<void>
}

/**
 * A receiver holding each request `holdMs` before it answers, counting per path how many it holds
 * at once (its peak) and when each arrived (its own clock).
 */
export async function startCountingReceiver(holdMs: number): Promise<CountingReceiver> {
  const arrivals: Arrival[] = []
  const open = new Map<string, number>()
  const peak = new Map<string, number>()
  let reply: (a: Arrival) => { status: number; headers?: Record<string, string> } = () => ({ status: 200 })
  const server = http.createServer((req, res) => {
    const path = req.url ?? ''
    // Open from its first byte until the answer goes.
    const now = (open.get(path) ?? 0) + 1
    open.set(path, now)
    peak.set(path, Math.max(peak.get(path) ?? 0, now))
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const arrival = { path, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() }
      arrivals.push(arrival)
      const { status, headers } = reply(arrival)
      setTimeout(() => {
        open.set(path, (open.get(path) ?? 1) - 1)
        res.writeHead(status, headers ?? {})
        res.end()
      }, holdMs)
    })
  })
  // Idle keep-alive sockets stay open for the run: a socket the server closes just as a worker
  // reuses it fails that attempt with a reset, which is no part of what these tests count.
  server.keepAliveTimeout = 120_000
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrivals,
    peak,
    answer: (fn) => {
      reply = fn
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r())
        server.closeAllConnections()
      }),
  }
}
