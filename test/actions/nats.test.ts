import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream'
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node'
import { closeConnections } from '../../src/actions/connections.ts'
import { isPublishSubject, type NatsAction, nats } from '../../src/actions/nats.ts'
import type { Delivery } from '../../src/event/delivery.ts'
import { fromJobData } from '../../src/queue/boss.ts'
import { actionContext } from '../helpers/action-context.ts'
import { kindObserver, startActionWorker, withWorker } from '../helpers/action-worker.ts'
import type { TestDatabase } from '../helpers/db.ts'
import { dlqCount, dlqRow } from '../helpers/outcomes.ts'
import { hostPort, skipUnlessReachable } from '../helpers/services.ts'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts'
import { eventually, type TestWorker } from '../helpers/worker.ts'

const natsUrl = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222'
const target = hostPort(natsUrl, 4222)
const skip = await skipUnlessReachable('NATS', target)

const run = randomBytes(4).toString('hex')
const subjects = `obstest_${run}`
const stream = `OBS_TEST_${run.toUpperCase()}`
const tableSql = 'create table orders (id bigint primary key, kind text not null, status text, region text)'
const observer = (name: string, action: Record<string, unknown>) => kindObserver('orders', name, action)

async function deliveryOf(
  db: TestDatabase,
  observer: string,
): Promise<Delivery & { output: Record<string, unknown> }> {
  return eventually(async () => {
    const { rows } = await db.pool.query(
      `select j.data, d.output from pgboss.job j
         join observers.deliveries d on d.delivery_id = j.data ->> 'delivery_id' and d.outcome = 'delivered'
        where j.state = 'completed' and j.data ->> 'observer' = $1`,
      [observer],
    )
    return rows[0] ? { ...fromJobData(rows[0].data), output: rows[0].output } : undefined
  })
}

test('a publish subject is dot-separated tokens: none empty, no whitespace, no wildcards', () => {
  const cases: Array<[string, boolean]> = [
    ['orders.created', true],
    ['orders.eu-west.42', true],
    ['orders', true],
    ['', false],
    ['orders..created', false],
    ['.orders', false],
    ['orders.', false],
    ['orders.north east', false],
    ['orders.\tcreated', false],
    ['orders.*', false],
    ['orders.>', false],
  ]
  for (const [subject, valid] of cases)
    assert.equal(isPublishSubject(subject), valid, JSON.stringify(subject))
})

describe('nats', { skip }, () => {
  let direct: NatsConnection
  let jsm: JetStreamManager
  let proxy: TcpProxy
  let db: TestDatabase
  let worker: TestWorker
  const received: Msg[] = []
  const on = (subject: string) => received.filter((m) => m.subject === subject)

  before(async () => {
    direct = await connect({ servers: natsUrl })
    direct.subscribe(`${subjects}.>`, {
      callback: (_err, msg) => {
        received.push(msg)
      },
    })
    await direct.flush()
    jsm = await jetstreamManager(direct)
    await jsm.streams.add({ name: stream, subjects: [`${subjects}js.>`] })
    proxy = await startTcpProxy(target)
    ;({ db, worker } = await startActionWorker(
      tableSql,
      [
        observer('core', {
          type: 'nats',
          subject: `${subjects}.orders.{{ event | downcase }}.{{ id }}`,
        }),
        observer('tpl', {
          type: 'nats',
          subject: `${subjects}.tpl`,
          message_template: { order: '{{ id }}', status: '{{ status }}', region: '{{ region | upcase }}' },
        }),
        observer('text', {
          type: 'nats',
          subject: `${subjects}.text`,
          message_template: 'order {{ id }} is {{ status }}',
        }),
        observer('js', {
          type: 'nats',
          subject: `${subjects}js.orders.{{ id }}`,
          jetstream: true,
        }),
        observer('lost', {
          type: 'nats',
          subject: `${subjects}nostream.{{ id }}`,
          jetstream: true,
        }),
        observer('bad', { type: 'nats', subject: `${subjects}.region.{{ region }}` }),
        observer('flaky', { type: 'nats', subject: `${subjects}.flaky`, timeout_ms: 1500 }),
        observer('broken', {
          type: 'nats',
          subject: `${subjects}.broken`,
          message_template: "{% include 'no-such-partial' %}",
        }),
      ],
      { NATS_URL: `nats://127.0.0.1:${proxy.port}` },
    ))
  })

  after(async () => {
    await worker?.stop()
    await closeConnections()
    await db?.drop()
    await proxy?.close()
    await jsm?.streams.delete(stream).catch(() => false)
    await direct?.drain()
  })

  test('publishes the event as exact JSON with observer and delivery headers', async () => {
    await db.pool.query(`insert into orders values (9007199254740993, 'core', 'placed', 'eu')`)
    const msg = await eventually(() => on(`${subjects}.orders.insert.9007199254740993`)[0])
    const { delivery_id } = await deliveryOf(db, 'core')
    assert.match(msg.string(), /"after":\{"id":9007199254740993,/, 'the bigint as Postgres wrote it')
    const event = msg.json<Record<string, unknown>>()
    assert.equal(event.event, 'INSERT')
    assert.equal(event.entity, 'public.orders')
    assert.equal(event.entity_id, '9007199254740993')
    assert.equal(msg.headers?.get('observer'), 'core')
    assert.equal(msg.headers?.get('delivery-id'), delivery_id)
    assert.equal(msg.headers?.get('Nats-Msg-Id'), delivery_id)
  })

  test('renders JSON and text message templates', async () => {
    await db.pool.query(`insert into orders values (2, 'tpl', 'paid', 'eu'), (3, 'text', 'paid', 'us')`)
    const json = await eventually(() => on(`${subjects}.tpl`)[0])
    assert.equal(json.string(), '{"order":2,"status":"paid","region":"EU"}')
    const text = await eventually(() => on(`${subjects}.text`)[0])
    assert.equal(text.string(), 'order 3 is paid')
  })

  test('JetStream stores the message once: the same delivery published again is a duplicate', async () => {
    await db.pool.query(`insert into orders values (4, 'js', 'placed', 'eu')`)
    const delivery = await deliveryOf(db, 'js')
    assert.equal(delivery.output.stream, stream)
    assert.equal(delivery.output.duplicate, false)
    const stored = await jsm.streams.getMessage(stream, { last_by_subj: `${subjects}js.orders.4` })
    assert.equal(stored?.header.get('Nats-Msg-Id'), delivery.delivery_id)
    assert.equal(stored?.header.get('observer'), 'js')
    assert.equal(stored?.json<{ entity_id: string }>().entity_id, '4')

    const env = { NATS_URL: `nats://127.0.0.1:${proxy.port}` }
    const again = await nats.execute(delivery.action as NatsAction, actionContext(delivery, env))
    assert.equal(again.detail?.duplicate, true)
    assert.equal((await jsm.streams.info(stream)).state.messages, 1)
  })

  test('no stream for the subject dead-letters at once with a clear message', async () => {
    await db.pool.query(`insert into orders values (5, 'lost', 'placed', 'eu')`)
    const row = await dlqRow(db.pool, 'lost')
    assert.equal(row.attempts, 1)
    assert.equal(row.last_error_code, 'OB007')
    assert.match(row.last_error, new RegExp(`no JetStream stream captures subject "${subjects}nostream.5"`))
  })

  test('a rendered subject that is not a valid NATS subject dead-letters at once', async () => {
    await db.pool.query(`insert into orders values (6, 'bad', 'placed', 'north east')`)
    const row = await dlqRow(db.pool, 'bad')
    assert.equal(row.attempts, 1)
    assert.equal(row.last_error_code, 'OB007')
    assert.match(row.last_error, /invalid NATS subject ".*\.region\.north east"/)
    assert.equal(received.filter((m) => m.subject.includes('.region.')).length, 0)
  })

  test('a NATS outage is retried until the connection is back', async () => {
    proxy.cut()
    await db.pool.query(`insert into orders values (7, 'flaky', 'placed', 'eu')`)
    const retried = await eventually(() =>
      worker.logs.records.find((r) => r.observer === 'flaky' && r.outcome === 'retry'),
    )
    assert.match(String(retried.code), /^(OB006|OB014)$/, 'a transient failure or a timeout')
    assert.equal(on(`${subjects}.flaky`).length, 0, 'nothing arrived while NATS was away')
    proxy.restore()
    const { delivery_id } = await deliveryOf(db, 'flaky')
    const msgs = await eventually(() =>
      on(`${subjects}.flaky`).length > 0 ? on(`${subjects}.flaky`) : undefined,
    )
    // At least once: a publish buffered during the outage may arrive besides the retried one.
    assert.ok(msgs.every((m) => m.headers?.get('delivery-id') === delivery_id))
    assert.equal(await dlqCount(db.pool, 'flaky'), 0)
  })

  test('a template that fails to render dead-letters with OB008 and publishes nothing', async () => {
    await db.pool.query(`insert into orders values (8, 'broken', 'placed', 'eu')`)
    const row = await dlqRow(db.pool, 'broken')
    assert.equal(row.last_error_code, 'OB008')
    assert.equal(row.attempts, 1)
    assert.equal(on(`${subjects}.broken`).length, 0)
  })
})

describe('nats without NATS_URL', () => {
  test('is reported at startup and its deliveries fail permanently with OB005', async () => {
    const core = observer('core', { type: 'nats', subject: 'orders.created' })
    await withWorker(tableSql, [core], {}, async (worker, db) => {
      const warning = worker.logs.records.find((r) => r.code === 'OB005' && r.variable === 'NATS_URL')
      assert.equal(warning?.observer, 'core')
      await db.pool.query(`insert into orders values (1, 'core', 'placed', 'eu')`)
      const row = await dlqRow(db.pool, 'core')
      assert.equal(row.last_error_code, 'OB005')
      assert.equal(row.attempts, 1)
      assert.match(row.last_error, /NATS_URL is not set/)
    })
  })
})
