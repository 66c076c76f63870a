import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import pg from 'pg'
import { lockKeys } from '../../src/db/locks.ts'
import { startListener } from '../../src/dispatch/listener.ts'
import { createLogger } from '../../src/log/log.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type PgBouncer, skipUnlessPgbouncer, startPgbouncer } from '../helpers/pgbouncer.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import {
  eventually,
  logSink,
  observersDir,
  runWorker,
  startError,
  type TestWorker,
} from '../helpers/worker.ts'

/**
 * DATABASE_URL through PgBouncer in transaction mode (as on Heroku and most managed poolers),
 * DATABASE_DIRECT_URL straight to the server.
 */
const skip = skipUnlessPgbouncer()
let db: TestDatabase
let bouncer: PgBouncer
let receiver: Receiver
let dir: string
// The leader lock, as pg_locks splits a bigint key.
const leaderKey = BigInt(lockKeys.leader)

before(async () => {
  if (skip) return
  db = await createTestDatabase('create table orders (id int primary key, status text not null)')
  bouncer = await startPgbouncer(db.url)
  receiver = await startReceiver()
  dir = await observersDir({
    'orders.json': {
      name: 'orders',
      entity: 'orders',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: `${receiver.url}/orders/{{ entity_id }}` }],
    },
  })
})

after(async () => {
  await receiver?.close()
  await bouncer?.stop()
  await db?.drop()
})

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    return (await c.query<T>(sql)).rows
  } finally {
    await c.end()
  }
}

function env(): Record<string, string> {
  // PgBouncer before 1.21 cannot keep named prepared statements across transactions.
  return bouncer.preparedStatements ? {} : { OBSERVERS_PREPARED_STATEMENTS: 'false' }
}

test('without DATABASE_DIRECT_URL, a worker behind a transaction pooler says what it needs', {
  skip,
}, async () => {
  const err = await startError(bouncer.url(db.url), dir, env())
  assert.equal(err.code, 'OB001')
  assert.match(err.message, /^DATABASE_URL goes through a transaction-mode pooler/)
  assert.match(err.message, /set DATABASE_DIRECT_URL to a direct connection/)
})

test('through the pooler with a direct URL: deliveries flow, LISTEN and leadership stay direct', {
  skip,
}, async () => {
  let worker: TestWorker | undefined
  try {
    worker = await runWorker(bouncer.url(db.url), dir, { ...env(), DATABASE_DIRECT_URL: db.url })
    const w = worker
    await eventually(() => w.worker.dispatcher.listener.leader, 30_000, 'the worker leads')

    // The application writes through the pooler too.
    const app = new pg.Pool({ connectionString: bouncer.url(db.url), max: 4 })
    try {
      for (let i = 1; i <= 20; i++) await app.query('insert into orders values ($1, $2)', [i, 'new'])
    } finally {
      await app.end()
    }
    await receiver.waitFor(20, 60_000)
    const paths = receiver.requests.map((r) => r.path).sort()
    assert.deepEqual(paths, Array.from({ length: 20 }, (_, i) => `/orders/${i + 1}`).sort())

    // The leadership lock is held by the listener's own, direct session.
    const holders = await query<{ application_name: string }>(
      db.url,
      `select a.application_name from pg_locks l join pg_stat_activity a using (pid)
        where l.locktype = 'advisory' and l.granted
          and l.database = (select oid from pg_database where datname = current_database())
          and l.classid = ${leaderKey >> 32n} and l.objid = ${leaderKey & 0xffffffffn}`,
    )
    assert.deepEqual(
      holders.map((h) => h.application_name),
      ['pg-observers-listener'],
    )
    // PgBouncer's own view: the queue and the worker's pool are its clients, the listener is not.
    const clients = await query<{ database: string; application_name?: string }>(
      bouncer.adminUrl,
      'show clients',
    )
    const names = new Set(
      clients.filter((c) => c.database === new URL(db.url).pathname.slice(1)).map((c) => c.application_name),
    )
    assert.ok(names.has('pg-observers-queue'), `pooler clients: ${[...names].join(', ')}`)
    assert.ok(!names.has('pg-observers-listener'), `pooler clients: ${[...names].join(', ')}`)
    const errors = w.logs.records.filter((r) => r.level === 'error' || r.level === 'fatal')
    assert.deepEqual(errors, [], 'nothing failed along the way')
  } finally {
    await worker?.stop()
  }
})

test('a listener that finds itself on a pooled connection says so, even when the start-up probe missed it', {
  skip,
}, async () => {
  const { sink, stream } = logSink()
  const listener = startListener(bouncer.url(db.url), createLogger('info', stream), () => {}, {
    intervalMs: 200,
    timeoutMs: 10_000,
  })
  const holders: pg.Client[] = []
  try {
    await eventually(() => listener.connected, 30_000, 'the listener connects')
    // Every server session the pooler keeps for this database is taken by an open transaction,
    // so the listener's next statement runs on another one.
    const servers = await query<{ database: string }>(bouncer.adminUrl, 'show servers')
    const ours = servers.filter((s) => s.database === new URL(db.url).pathname.slice(1)).length
    for (let i = 0; i < ours; i++) {
      const c = new pg.Client({ connectionString: bouncer.url(db.url) })
      await c.connect()
      await c.query('begin')
      await c.query('select 1')
      holders.push(c)
    }
    const line = await eventually(
      () => sink.records.find((r) => r.code === 'OB001'),
      30_000,
      'the OB001 line',
    )
    assert.match(String(line.msg), /moved to another server session.*set DATABASE_DIRECT_URL/)
  } finally {
    await listener.close()
    for (const c of holders) await c.end().catch(() => {})
  }
})
