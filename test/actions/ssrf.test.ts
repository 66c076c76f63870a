import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { generateVapidKeys, startPushService } from '../helpers/fake-webpush.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker } from '../helpers/worker.ts'

// Connections are only ever attempted to loopback; the other ranges are covered address by
// address in ssrf-address.test.ts.

let db: TestDatabase
let receiver: Receiver
let elsewhere: Receiver

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  elsewhere = await startReceiver()
  await db.pool.query('create table hooks (id int primary key, target text not null)')
})

after(async () => {
  await receiver?.close()
  await elsewhere?.close()
  await db?.drop()
})

function observers(targets: Record<string, string>) {
  return observersDir(
    Object.fromEntries(
      Object.entries(targets).map(([name, url]) => [
        `${name}.json`,
        {
          name,
          entity: 'hooks',
          events: ['INSERT'],
          condition: `target = '${name}'`,
          actions: [{ type: 'webhook', url }],
        },
      ]),
    ),
  )
}

test('OBSERVERS_BLOCK_PRIVATE_NETWORKS=true: loopback by name, literal and disguise is refused with OB007', async (t) => {
  const port = new URL(receiver.url).port
  const targets = {
    name: `http://localhost:${port}/`,
    v4: `http://127.0.0.1:${port}/`,
    v6: `http://[::1]:${port}/`,
    mapped: `http://[::ffff:127.0.0.1]:${port}/`,
    decimal: `http://2130706433:${port}/`,
    unspecified: `http://0.0.0.0:${port}/`,
  }
  const w = await runWorker(db.url, await observers(targets), { OBSERVERS_BLOCK_PRIVATE_NETWORKS: 'true' })
  t.after(() => w.stop())
  const names = Object.keys(targets)
  await db.pool.query('insert into hooks select i, t from unnest($1::text[]) with ordinality as u(t, i)', [
    names,
  ])
  const dead = await eventually(
    async () => {
      const { rows } = await db.pool.query(
        'select observer, last_error_code, last_error, attempts from observers.dlq',
      )
      return rows.length === names.length ? rows : undefined
    },
    20_000,
    'every blocked delivery in the DLQ',
  )
  const byName = new Map(dead.map((r) => [r.observer, r]))
  for (const name of names) {
    const row = byName.get(name)
    assert.equal(row.last_error_code, 'OB007', `${name}: permanent`)
    assert.equal(row.attempts, 1, `${name}: not retried`)
    assert.match(row.last_error, /refused: .* is blocked \(OBSERVERS_BLOCK_PRIVATE_NETWORKS\)/)
  }
  assert.match(
    byName.get('name').last_error,
    /connection to localhost \(127\.0\.0\.1\) refused: loopback range/,
  )
  assert.match(byName.get('v6').last_error, /connection to ::1 refused: loopback range ::1\/128/)
  assert.match(byName.get('mapped').last_error, /IPv4-mapped 127\.0\.0\.1/)
  assert.match(byName.get('unspecified').last_error, /0\.0\.0\.0 refused: this-network range/)
  assert.equal(receiver.requests.length, 0, 'nothing reached the receiver')
})

test('a Web Push endpoint taken from row data is guarded the same way', async (t) => {
  const pushService = await startPushService()
  t.after(() => pushService.close())
  await db.pool.query('create table devices (id int primary key, subscription jsonb not null)')
  const vapid = generateVapidKeys()
  const dir = await observersDir({
    'devices.json': {
      name: 'devices',
      entity: 'devices',
      events: ['INSERT'],
      actions: [
        { type: 'push', provider: 'webpush', device_token: '{{ subscription }}', body_template: 'hello' },
      ],
    },
  })
  const w = await runWorker(db.url, dir, {
    OBSERVERS_BLOCK_PRIVATE_NETWORKS: 'true',
    VAPID_PUBLIC_KEY: vapid.publicKey,
    VAPID_PRIVATE_KEY: vapid.privateKey,
    VAPID_SUBJECT: 'mailto:ops@example.com',
  })
  t.after(() => w.stop())
  await db.pool.query('insert into devices values (1, $1)', [pushService.subscribe('device-1')])
  const row = await eventually(
    async () => {
      const { rows } = await db.pool.query(`select * from observers.dlq where observer = 'devices'`)
      return rows[0]
    },
    20_000,
    'the push in the DLQ',
  )
  assert.equal(row.last_error_code, 'OB007')
  assert.equal(row.attempts, 1)
  assert.match(row.last_error, /127\.0\.0\.1 refused: loopback range/)
  assert.doesNotMatch(row.last_error, /device-1/, 'the capability path stays out of the message')
  assert.equal(pushService.pushes.length, 0)
})

test('off by default: loopback is delivered, and a redirect is never followed', async (t) => {
  await db.pool.query('delete from hooks')
  receiver.reply((r) =>
    r.path === '/redirect'
      ? { status: 302, headers: { location: `${elsewhere.url}/stolen` } }
      : { status: 200 },
  )
  const w = await runWorker(
    db.url,
    await observers({
      local: `http://localhost:${new URL(receiver.url).port}/ok`,
      hop: `${receiver.url}/redirect`,
    }),
  )
  t.after(() => w.stop())
  await db.pool.query(`insert into hooks values (101, 'local'), (102, 'hop')`)
  await eventually(() => receiver.requests.some((r) => r.path === '/ok'), 20_000, 'loopback delivery')
  const { rows } = await eventually(
    async () => {
      const r = await db.pool.query(
        `select last_error_code, last_error from observers.dlq where observer = 'hop'`,
      )
      return r.rows.length ? r : undefined
    },
    20_000,
    'the redirected delivery in the DLQ',
  )
  assert.equal(rows[0].last_error_code, 'OB007')
  assert.match(rows[0].last_error, /answered 302/)
  assert.equal(elsewhere.requests.length, 0, 'the redirect target was never contacted')
})
