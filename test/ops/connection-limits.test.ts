import assert from 'node:assert/strict'
import net from 'node:net'
import { after, before, test } from 'node:test'
import { loadConfig } from '../../src/config/config.ts'
import { ConfigError } from '../../src/errors/errors.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api, hookObserver } from './helpers.ts'

const maxConnections = 20

let db: TestDatabase
let receiver: Receiver
let worker: TestWorker

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  await db.pool.query('create table parcels (id int primary key)')
  const dir = await observersDir({
    'parcels.json': hookObserver('parcel-hook', 'parcels', `${receiver.url}/parcels`),
  })
  worker = await runWorker(db.url, dir, {
    OBSERVERS_HTTP_MAX_CONNECTIONS: String(maxConnections),
    OBSERVERS_HTTP_HEADERS_TIMEOUT_MS: '1000',
    OBSERVERS_HTTP_REQUEST_TIMEOUT_MS: '2000',
    OBSERVERS_STREAM_MAX_CLIENTS: '5',
    OBSERVERS_SSE_HEARTBEAT_MS: '200',
  })
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

interface SlowClient {
  closed: boolean
  received: string
}

/** A client that connects and then sends nothing, or only the start of a request, ever. */
function slowClient(port: number, partial: string): SlowClient {
  const client: SlowClient = { closed: false, received: '' }
  const socket = net.connect(port, '127.0.0.1', () => {
    if (partial) socket.write(partial)
  })
  socket.setEncoding('utf8')
  socket.on('data', (text: string) => {
    client.received += text
  })
  socket.on('error', () => {})
  socket.on('close', () => {
    client.closed = true
  })
  return client
}

test('idle and half-sent requests are cut by the server; /healthz and deliveries carry on', async () => {
  const port = worker.worker.ops?.port ?? 0
  const slow = Array.from({ length: 3 * maxConnections }, (_, i) =>
    slowClient(port, i % 2 ? 'GET /healthz HTTP/1.1\r\nHost: worker\r\nX-Slow: ' : ''),
  )
  await db.pool.query('insert into parcels select generate_series(1, 100)')

  await eventually(() => slow.every((c) => c.closed), 120_000, 'the server to close every slow client')
  // Accepted clients are answered 408; those past the cap are closed unanswered as they arrive.
  const answered = slow.filter((c) => c.received.startsWith('HTTP/1.1 408')).length
  const dropped = slow.filter((c) => c.received === '').length
  assert.equal(answered + dropped, slow.length, 'each slow client answered 408 or dropped')
  assert.ok(answered > 0 && dropped > 0, `${answered} answered 408, ${dropped} dropped at the cap`)
  const warning = worker.logs.records.find((r) => /at its connection limit/.test(String(r.msg)))
  assert.equal(warning?.max_connections, maxConnections, 'the operator is told the cap was reached')

  const health = await eventually(async () => {
    const r = await api(worker.worker, '/healthz').catch(() => undefined)
    return r?.status === 200 ? r : undefined
  })
  assert.deepEqual(health.body, { status: 'ok' })
  await receiver.waitFor(100, 120_000)
  const ids = new Set(receiver.requests.map((r) => JSON.parse(r.body).after.id))
  assert.equal(ids.size, 100, 'every change delivered')
  const { rows } = await db.pool.query('select count(*)::int as n from observers.dlq')
  assert.equal(rows[0].n, 0, 'nothing dead-lettered')
})

test('a stream outlives the request timeout: it only bounds receiving the request', async () => {
  const ctl = new AbortController()
  const res = await fetch(`http://127.0.0.1:${worker.worker.ops?.port}/api/stream`, { signal: ctl.signal })
  let text = ''
  let ended = false
  const reading = (async () => {
    try {
      for await (const chunk of res.body ?? []) text += Buffer.from(chunk).toString('utf8')
      ended = true
    } catch {}
  })()
  try {
    // 15 heartbeats 200 ms apart take at least 2.8 s, past the 2 s request timeout.
    await eventually(() => text.split(': heartbeat').length > 15, 120_000, '15 heartbeats')
    assert.equal(ended, false, 'the stream is still open')
  } finally {
    ctl.abort()
    await reading
  }
})

test('the connection limits are checked against each other at startup', () => {
  const base = { DATABASE_URL: 'postgres://x/y' }
  assert.throws(
    () => loadConfig({ ...base, OBSERVERS_HTTP_MAX_CONNECTIONS: '10', OBSERVERS_STREAM_MAX_CLIENTS: '10' }),
    ConfigError,
  )
  assert.throws(
    () =>
      loadConfig({
        ...base,
        OBSERVERS_HTTP_HEADERS_TIMEOUT_MS: '5000',
        OBSERVERS_HTTP_REQUEST_TIMEOUT_MS: '1000',
      }),
    ConfigError,
  )
  const config = loadConfig(base)
  assert.equal(config.httpMaxConnections, 256)
  assert.equal(config.streamMaxClients, 100)
})
