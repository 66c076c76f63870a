import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { hostPort } from '../helpers/services.ts'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

/**
 * The listener's connection (DATABASE_DIRECT_URL) runs through a relay that can stop forwarding
 * without closing anything: only the heartbeat can tell that connection is gone.
 */
let db: TestDatabase
let proxy: TcpProxy
let receiver: Receiver
let worker: TestWorker

// Bounds only a failure: a passing run waits as long as the worker takes, however loaded the
// machine (a reconnect may back off up to 30 s after a long black-hole).
const patienceMs = 180_000

before(async () => {
  db = await createTestDatabase('create table orders (id int primary key)')
  proxy = await startTcpProxy(hostPort(db.url, 5432))
  receiver = await startReceiver()
  const direct = new URL(db.url)
  direct.hostname = '127.0.0.1'
  direct.port = String(proxy.port)
  const dir = await observersDir({
    'orders.json': {
      name: 'orders',
      entity: 'orders',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: `${receiver.url}/orders/{{ entity_id }}` }],
    },
  })
  worker = await runWorker(db.url, dir, { DATABASE_DIRECT_URL: direct.toString() })
})

after(async () => {
  await worker?.stop()
  await proxy?.close()
  await receiver?.close()
  await db?.drop()
})

async function readyz(): Promise<{ status: number; listener: { ok: boolean; detail?: string } | undefined }> {
  const res = await fetch(`http://127.0.0.1:${worker.worker.ops?.port}/readyz`)
  const body = (await res.json()) as { checks?: { listener?: { ok: boolean; detail?: string } } }
  return { status: res.status, listener: body.checks?.listener }
}

async function listenerSessions(): Promise<number[]> {
  const { rows } = await db.pool.query<{ pid: number }>(
    `select pid from pg_stat_activity
      where application_name = 'pg-observers-listener' and datname = current_database()`,
  )
  return rows.map((r) => r.pid)
}

test('a listener connection that silently stops answering is replaced, and changes still flow', async () => {
  const listener = worker.worker.dispatcher.listener
  await eventually(() => listener.leader, patienceMs, 'the worker leads')
  await db.pool.query('insert into orders values (1)')
  await receiver.waitFor(1, patienceMs)
  const [before] = await listenerSessions()
  assert.ok(before, 'one listener session')

  proxy.blackhole()
  const blackholedAt = Date.now()
  // /readyz says so while the path stays down; the log says why (the detail moves on to the
  // failing reconnects once the replacement is under way).
  const down = await eventually(
    async () => {
      const r = await readyz()
      return r.status === 503 && r.listener?.ok === false ? r : undefined
    },
    patienceMs,
    '/readyz 503 for the listener',
  )
  // Whichever query on the connection meets the silence first names it: the heartbeat, or a
  // pass's partition-lock query (both time out after the heartbeat's limit).
  await eventually(
    () =>
      worker.logs.lines.some(
        (l) =>
          l.includes('listener connection lost') && /no answer to the heartbeat|Query read timeout/.test(l),
      ),
    patienceMs,
    'the log naming the silent connection',
  )
  assert.equal(down.listener?.ok, false)
  const detectedMs = Date.now() - blackholedAt
  assert.equal(listener.leader, false)
  // Committed after the black-hole: the old session still LISTENs and holds the lock.
  await db.pool.query('insert into orders values (2)')
  // A reconnect fails while the path is down (the relay refuses it) before one gets through: the
  // session that does must still end the first one, which holds the leadership and sleep locks.
  await eventually(
    () => worker.logs.lines.filter((l) => l.includes('listener connection lost')).length >= 2,
    patienceMs,
    'a reconnect failing while the path is down',
  )

  proxy.restore()
  await eventually(async () => (await readyz()).status === 200, patienceMs, '/readyz 200 again')
  const [req] = await eventually(
    () => {
      const r = receiver.requests.filter((q) => q.path === '/orders/2')
      return r.length > 0 ? r : undefined
    },
    patienceMs,
    'the change committed after the black-hole delivered',
  )
  assert.equal(req?.path, '/orders/2')
  // The abandoned session is ended (a terminated backend leaves pg_stat_activity when it has
  // exited, not when it is told to), so its locks no longer block the new connection.
  await eventually(
    async () => {
      const sessions = await listenerSessions()
      return sessions.length === 1 && sessions[0] !== before
    },
    patienceMs,
    'the new listener session alone',
  )
  // Leadership is taken again at the dispatcher's next pass, which may follow the delivery.
  await eventually(() => listener.leader, patienceMs, 'the worker leads again')
  console.log(`black-holed listener detected after ${detectedMs} ms`)
})
