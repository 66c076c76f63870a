import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'

/** One request as the receiver wrote it down, before answering. */
export interface Recorded {
  at: number
  path: string
  status: number | 'hang'
  /** The `x-delivery-id` header, or `webhook-id` for signed deliveries. */
  deliveryId: string | undefined
  body: string
}

export type Answer = { status: number; headers?: Record<string, string> } | 'hang'

export interface DurableReceiverOptions {
  /** Answer for each request; 200 by default. */
  answer?: (path: string, body: string) => Answer
  /** At most this many answers per second; requests queue up beyond it. */
  ratePerSecond?: number
  /** Fixed latency before each answer. */
  latencyMs?: number
  /** Keep request bodies in the file. @defaultValue true */
  bodies?: boolean
}

/**
 * A webhook receiver that appends every request to a file (one JSON line, written synchronously
 * before the answer goes out), so what it acknowledged survives its own restarts. It can go down
 * and come back on the same port, and counts how many requests it holds open at once.
 */
export interface DurableReceiver {
  readonly url: string
  readonly file: string
  /** Requests open right now, and the most ever open at once. */
  readonly open: number
  readonly maxOpen: number
  /** Distinct delivery ids acknowledged so far (kept in memory, cheap to poll). */
  readonly distinct: number
  records(): Recorded[]
  /** Acknowledged (2xx) records only. */
  delivered(): Recorded[]
  /** Stops listening and cuts every open connection. */
  down(): Promise<void>
  /** Listens again on the same port. */
  up(): Promise<void>
  /** Stops for good and removes the record file. */
  close(): Promise<void>
}

export async function startDurableReceiver(opts: DurableReceiverOptions = {}): Promise<DurableReceiver> {
  const dir = mkdtempSync(path.join(tmpdir(), 'receiver-'))
  const file = path.join(dir, 'deliveries.jsonl')
  appendFileSync(file, '')
  let open = 0
  let maxOpen = 0
  const acknowledged = new Set<string | undefined>()
  let nextSlotAt = 0
  const slotMs = opts.ratePerSecond ? 1000 / opts.ratePerSecond : 0

  const answerAfter = () => {
    const now = Date.now()
    nextSlotAt = Math.max(nextSlotAt, now) + slotMs
    return Math.max(0, nextSlotAt - now - slotMs) + (opts.latencyMs ?? 0)
  }

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => {
    const answer = opts.answer?.(req.url ?? '', body) ?? { status: 200 }
    const header = req.headers['x-delivery-id'] ?? req.headers['webhook-id']
    const record: Recorded = {
      at: Date.now(),
      path: req.url ?? '',
      status: answer === 'hang' ? 'hang' : answer.status,
      deliveryId: typeof header === 'string' ? header : undefined,
      body: opts.bodies === false ? '' : body,
    }
    if (answer === 'hang') {
      appendFileSync(file, `${JSON.stringify(record)}\n`)
      return
    }
    setTimeout(() => {
      if (res.destroyed) return
      appendFileSync(file, `${JSON.stringify({ ...record, at: Date.now() })}\n`)
      if (answer.status < 300) acknowledged.add(record.deliveryId)
      res.writeHead(answer.status, answer.headers ?? {})
      res.end()
    }, answerAfter())
  }

  const server = http.createServer((req, res) => {
    open++
    maxOpen = Math.max(maxOpen, open)
    res.on('close', () => open--)
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')))
  })
  server.keepAliveTimeout = 60_000
  let port = 0
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject)
        port = (server.address() as AddressInfo).port
        resolve()
      })
    })
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  await listen()
  const records = () =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Recorded)
  return {
    url: `http://127.0.0.1:${port}`,
    file,
    get open() {
      return open
    },
    get maxOpen() {
      return maxOpen
    },
    get distinct() {
      return acknowledged.size
    },
    records,
    delivered: () => records().filter((r) => typeof r.status === 'number' && r.status < 300),
    down: stop,
    up: listen,
    async close() {
      if (server.listening) await stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
