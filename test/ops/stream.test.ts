import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

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
  worker = await runWorker(db.url, dir, { OBSERVERS_SSE_HEARTBEAT_MS: '200' })
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

interface Sse {
  events: Array<{ event: string; id: string; data: Record<string, unknown> }>
  comments: string[]
  close(): void
}

/** Opens /api/stream and collects what arrives until closed. */
async function openStream(query: string): Promise<Sse> {
  const ctl = new AbortController()
  const res = await fetch(`http://127.0.0.1:${worker.worker.ops?.port}/api/stream${query}`, {
    signal: ctl.signal,
  })
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
  const sse: Sse = { events: [], comments: [], close: () => ctl.abort() }
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }))
      if (done) return
      buffer += value
      let end = buffer.indexOf('\n\n')
      while (end >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        if (block.startsWith(':')) sse.comments.push(block.slice(1).trim())
        else {
          const field = (name: string) =>
            block
              .split('\n')
              .find((l) => l.startsWith(`${name}: `))
              ?.slice(name.length + 2) ?? ''
          sse.events.push({ event: field('event'), id: field('id'), data: JSON.parse(field('data')) })
        }
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
    await eventually(() => worker.worker.telemetry.feed.subscribers === 3, 5000, 'three subscribers')
    await db.pool.query(`insert into orders values (1, 'new')`)
    await db.pool.query(`update orders set status = 'paid' where id = 1`)
    await db.pool.query('insert into notes values (1)')
    await eventually(() => all.events.length >= 5, 10_000, 'five executions on the unfiltered stream')
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
    await eventually(() => failures.events.length === 2, 5000, 'both failures')
    assert.ok(failures.events.every((e) => e.data.outcome === 'failed' && e.data.code === 'OB007'))
    assert.ok(all.comments.includes('connected'))
    await eventually(() => all.comments.includes('heartbeat'), 5000, 'a heartbeat')
  } finally {
    for (const s of [all, orderInserts, failures]) s.close()
  }
  await eventually(() => worker.worker.telemetry.feed.subscribers === 0, 5000, 'subscriptions cleaned up')
})
