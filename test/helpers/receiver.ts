import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ReceivedRequest {
  method: string
  path: string
  headers: http.IncomingHttpHeaders
  body: string
  at: number
}

export type Reply =
  | {
      status: number
      headers?: Record<string, string>
      body?: string
      delayMs?: number
      /** Answer only once this settles, to hold a request open until the test lets it go. */
      until?: Promise<unknown>
    }
  | 'hang'
  | 'drop'

/**
 * A local HTTP receiver that records every request and answers from a script
 * (one reply per request, the last one repeating), or from a function.
 */
export interface Receiver {
  url: string
  requests: ReceivedRequest[]
  reply(next: Reply[] | ((req: ReceivedRequest) => Reply)): void
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>
  close(): Promise<void>
}

export async function startReceiver(): Promise<Receiver> {
  const requests: ReceivedRequest[] = []
  let script: Reply[] | ((req: ReceivedRequest) => Reply) = [{ status: 200 }]
  let waiters: Array<() => void> = []
  let served = 0
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const r: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      }
      requests.push(r)
      const reply =
        typeof script === 'function'
          ? script(r)
          : (script[Math.min(served, script.length - 1)] ?? { status: 200 })
      served++
      for (const w of waiters) w()
      if (reply === 'hang') return
      if (reply === 'drop') {
        req.socket.destroy()
        return
      }
      const answer = () => {
        res.writeHead(reply.status, reply.headers ?? {})
        res.end(reply.body ?? '')
      }
      if (reply.until) void reply.until.then(answer)
      else if (reply.delayMs) setTimeout(answer, reply.delayMs)
      else answer()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    reply(next) {
      script = next
      served = 0
    },
    async waitFor(count, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs
      while (requests.length < count) {
        const left = deadline - Date.now()
        if (left <= 0)
          throw new Error(`receiver got ${requests.length} of ${count} requests in ${timeoutMs} ms`)
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(left, 250))
          waiters.push(() => {
            clearTimeout(t)
            resolve()
          })
        })
        waiters = []
      }
      return requests
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
