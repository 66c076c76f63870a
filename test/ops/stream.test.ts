import assert from 'node:assert/strict'
import net from 'node:net'
import { after, before, test } from 'node:test'
import { changeEvent, delivery } from '../helpers/action-context.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api } from './helpers.ts'

const maxClients = 4
// Bounds only a failure: a passing run waits as long as the worker takes, however loaded the machine.
const patienceMs = 120_000

let db: TestDatabase
let worker: TestWorker
let receiver: Receiver

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  receiver.reply((req) => (req.path === '/fail' ? { status: 422 } : { status: 200 }))
  await db.pool.query('create table orders (id int primary key, status text)')
  await db.pool.query('create table notes (id int primary key)')
  const hook = (name: string, entity: string, path: string) => ({
    name,
    entity,
    events: ['INSERT', 'UPDATE'],
    actions: [{ type: 'webhook', url: `${receiver.url}${path}` }],
    retry: { max_attempts: 1 },
  })
  const dir = await observersDir({
    'orders.json': hook('orders-hook', 'orders', '/ok'),
    'orders-fail.json': hook('orders-fail', 'orders', '/fail'),
    'notes.json': hook('notes-hook', 'notes', '/ok'),
  })
  worker = await runWorker(db.url, dir, {
    OBSERVERS_SSE_HEARTBEAT_MS: '200',
    OBSERVERS_STREAM_MAX_CLIENTS: String(maxClients),
  })
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

interface Sse {
  status: number
  events: Array<{ event: string; id: string; data: Record<string, unknown> }>
  comments: string[]
  /** The position a spec-following client would resume from (the last `id:` line received). */
  lastEventId: string
  ended: boolean
  close(): void
}

/** Parses one SSE block the way EventSource does: comments, fields, an event only with data. */
function readBlock(sse: Sse, block: string) {
  const fields: Record<string, string> = {}
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) sse.comments.push(line.slice(1).trim())
    else {
      const colon = line.indexOf(': ')
      if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 2)
    }
  }
  if (fields.id !== undefined) sse.lastEventId = fields.id
  if (fields.data !== undefined)
    sse.events.push({ event: fields.event ?? 'message', id: fields.id ?? '', data: JSON.parse(fields.data) })
}

/** Opens /api/stream and collects what arrives until closed. */
async function openStream(query: string, headers: Record<string, string> = {}): Promise<Sse> {
  const ctl = new AbortController()
  const res = await fetch(`http://127.0.0.1:${worker.worker.ops?.port}/api/stream${query}`, {
    signal: ctl.signal,
    headers,
  })
  const sse: Sse = {
    status: res.status,
    events: [],
    comments: [],
    lastEventId: '',
    ended: false,
    close: () => ctl.abort(),
  }
  if (res.status !== 200) return sse
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }))
      if (done) {
        sse.ended = true
        return
      }
      buffer += value
      let end = buffer.indexOf('\n\n')
      while (end >= 0) {
        readBlock(sse, buffer.slice(0, end))
        buffer = buffer.slice(end + 2)
        end = buffer.indexOf('\n\n')
      }
    }
  })()
  return sse
}

test('the stream delivers each execution, filtered by entity, event, observer and outcome', async () => {
  const all = await openStream('')
  const orderInserts = await openStream('?entity=orders&event=insert')
  const failures = await openStream('?observer=orders-fail&outcome=failed')
  try {
    await eventually(() => worker.worker.telemetry.feed.subscribers === 3, patienceMs, 'three subscribers')
    await db.pool.query(`insert into orders values (1, 'new')`)
    await db.pool.query(`update orders set status = 'paid' where id = 1`)
    await db.pool.query('insert into notes values (1)')
    await eventually(() => all.events.length >= 5, patienceMs, 'five executions on the unfiltered stream')
    // Each stream is a connection of its own: the filtered ones may read their last event later.
    await eventually(() => orderInserts.events.length >= 2, patienceMs, 'the order inserts')
    const first = all.events.find((e) => e.data.observer === 'orders-hook')!
    assert.equal(first.event, 'execution')
    assert.equal(first.data.type, 'webhook')
    assert.equal(first.data.attempt, 1)
    assert.equal(typeof first.data.duration_ms, 'number')
    assert.equal((first.data.event as { entity: string }).entity, 'public.orders')
    assert.equal(first.data.before, undefined, 'no row images on the stream')
    assert.deepEqual(
      orderInserts.events.map((e) => [e.data.observer, (e.data.event as { event: string }).event]).sort(),
      [
        ['orders-fail', 'INSERT'],
        ['orders-hook', 'INSERT'],
      ],
    )
    await eventually(() => failures.events.length === 2, patienceMs, 'both failures')
    assert.ok(failures.events.every((e) => e.data.outcome === 'failed' && e.data.code === 'OB007'))
    assert.ok(all.comments.includes('connected'))
    await eventually(() => all.comments.includes('heartbeat'), patienceMs, 'a heartbeat')
  } finally {
    for (const s of [all, orderInserts, failures]) s.close()
  }
  await eventually(
    () => worker.worker.telemetry.feed.subscribers === 0,
    patienceMs,
    'subscriptions cleaned up',
  )
})

const subscribers = () => worker.worker.telemetry.feed.subscribers
const noteIds = (sse: Sse) =>
  sse.events
    .filter((e) => e.data.observer === 'notes-hook')
    .map((e) => (e.data.event as { entity_id: string }).entity_id)

test('a client reconnecting with Last-Event-ID gets the executions it missed, then live ones', async () => {
  const witness = await openStream('?observer=notes-hook')
  const first = await openStream('?observer=notes-hook')
  try {
    await eventually(() => subscribers() === 2, patienceMs, 'two subscribers')
    await db.pool.query('insert into notes values (10)')
    await eventually(() => noteIds(first).includes('10'), patienceMs, 'note 10 on the first connection')
    first.close()
    await eventually(() => subscribers() === 1, patienceMs, 'the first connection gone')

    await db.pool.query('insert into notes values (11), (12)')
    await eventually(() => noteIds(witness).length === 3, patienceMs, 'notes 11 and 12 executed')
    const resumed = await openStream('?observer=notes-hook', { 'last-event-id': first.lastEventId })
    try {
      await eventually(() => noteIds(resumed).length === 2, patienceMs, 'the two missed executions')
      assert.deepEqual(noteIds(resumed).sort(), ['11', '12'])
      assert.deepEqual(
        resumed.events.map((e) => e.id),
        witness.events.slice(1).map((e) => e.id),
        'the same ids as live clients saw',
      )
      await db.pool.query('insert into notes values (13)')
      await eventually(() => noteIds(resumed).includes('13'), patienceMs, 'then live ones')
      assert.equal(resumed.events.filter((e) => e.event === 'gap').length, 0)
    } finally {
      resumed.close()
    }
  } finally {
    witness.close()
    first.close()
  }
  await eventually(() => subscribers() === 0, patienceMs, 'subscriptions cleaned up')
})

test('an id the worker cannot resume from gets a gap event, then the stream goes on', async () => {
  // EventSource sends the header on reconnect; the query parameter serves clients that cannot.
  for (const [query, headers] of [
    ['', { 'last-event-id': 'deadbeef.41' }],
    ['?last_event_id=deadbeef.41', {}],
  ] as const) {
    const sse = await openStream(query, headers)
    try {
      await eventually(() => sse.events.length >= 1, patienceMs, 'the gap event')
      assert.deepEqual(sse.events[0], {
        event: 'gap',
        id: '',
        data: { last_event_id: 'deadbeef.41', reason: 'unknown' },
      })
      await eventually(() => sse.lastEventId !== '', patienceMs, 'a position to resume from')
      assert.equal(sse.lastEventId, worker.worker.telemetry.feed.head)
    } finally {
      sse.close()
    }
    await eventually(() => subscribers() === 0, patienceMs, 'subscriptions cleaned up')
  }
})

test('clients past OBSERVERS_STREAM_MAX_CLIENTS are answered 503 until one leaves', async () => {
  const open = await Promise.all(Array.from({ length: maxClients }, () => openStream('')))
  try {
    assert.deepEqual(
      open.map((s) => s.status),
      open.map(() => 200),
    )
    const refused = await api(worker.worker, '/api/stream')
    assert.equal(refused.status, 503)
    assert.equal(refused.body.code, 'stream_full')
    assert.match(refused.body.message, /OBSERVERS_STREAM_MAX_CLIENTS=4/)
    assert.ok(Number(refused.headers.get('retry-after')) > 0)
    assert.equal(
      worker.logs.records.filter((r) => r.msg === 'ops request failed').length,
      0,
      'a refusal is an answer, not an error to log',
    )
    assert.equal(subscribers(), maxClients)
    open.pop()?.close()
    const next = await eventually(async () => {
      const s = await openStream('')
      if (s.status === 200) return s
      return undefined
    }, patienceMs)
    open.push(next)
  } finally {
    for (const s of open) s.close()
  }
  await eventually(() => subscribers() === 0, patienceMs, 'subscriptions cleaned up')
})

test('a client that stops reading is cut off; the others receive every execution', async () => {
  const reader = await openStream('?outcome=retry')
  const stalled = { closed: false }
  const socket = net.connect(worker.worker.ops?.port ?? 0, '127.0.0.1', () => {
    socket.write('GET /api/stream?outcome=retry HTTP/1.1\r\nHost: worker\r\n\r\n')
  })
  socket.on('error', () => {})
  socket.on('close', () => {
    stalled.closed = true
  })
  try {
    await eventually(() => subscribers() === 2, patienceMs, 'two subscribers')
    socket.pause()
    const feed = worker.worker.telemetry.feed
    const error = 'x'.repeat(16 * 1024)
    let published = 0
    // Each publish waits for the reading client, so only the stalled one can fall behind.
    while (subscribers() === 2 && published < 5000) {
      feed.publish({
        delivery: delivery({ type: 'log' }, changeEvent({ entity_id: String(published) })),
        attempt: 1,
        durationMs: 1,
        outcome: 'retry',
        error,
      })
      published++
      while (reader.events.length < published) await new Promise((r) => setImmediate(r))
    }
    assert.equal(subscribers(), 1, 'the stalled subscription removed')
    assert.equal(reader.events.length, published)
    assert.equal(reader.ended, false, 'the reading client is still connected')
    socket.resume()
    await eventually(() => stalled.closed, patienceMs, 'the stalled connection closed by the server')
  } finally {
    reader.close()
    socket.destroy()
  }
})
