import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { lean, observerFiles, scripted } from '../helpers/action-worker.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import {
  type FakePushService,
  generateVapidKeys,
  type PushReply,
  startPushService,
} from '../helpers/fake-webpush.ts'
import { assertNoSecrets, completedOutput, deliveryIdOf, dlqCount, dlqRow } from '../helpers/outcomes.ts'
import { pushObserver as observer, devicesTableSql as tableSql, webAction } from '../helpers/push-fixture.ts'
import { eventually, runWorker, type TestWorker } from '../helpers/worker.ts'

let db: TestDatabase
let pushService: FakePushService
let worker: TestWorker
const vapid = generateVapidKeys()
const vapidSubject = 'mailto:ops@shop.example'

before(async () => {
  db = await createTestDatabase()
  pushService = await startPushService()
  pushService.reply(
    scripted<{ path: string }, PushReply>(
      {
        '/push/flaky': [{ status: 429, headers: { 'retry-after': '1' } }, { status: 503 }, { status: 201 }],
        '/push/gone404': [{ status: 404 }],
        '/push/gone410': [{ status: 410, body: 'push subscription has unsubscribed or expired.' }],
      },
      (p) => p.path,
      { status: 201 },
    ),
  )
  await db.pool.query(tableSql)
  const dir = await observerFiles(
    observer('web', webAction),
    observer('web-text', { ...webAction, device_token: '{{ sub_text }}' }),
  )
  worker = await runWorker(db.url, dir, {
    ...lean,
    VAPID_PUBLIC_KEY: vapid.publicKey,
    VAPID_PRIVATE_KEY: vapid.privateKey,
    VAPID_SUBJECT: vapidSubject,
  })
})

after(async () => {
  await worker?.stop()
  await pushService?.close()
  await db?.drop()
})

test('webpush: VAPID-signed, aes128gcm-encrypted payload that the subscription can decrypt', async () => {
  const subscription = pushService.subscribe('ann')
  await db.pool.query(`insert into devices (id, kind, name, subscription) values (10, 'web', 'Ann', $1)`, [
    subscription,
  ])
  const output = await completedOutput(db.pool, 'push-web', '10')
  const push = pushService.pushes.find((p) => p.path === '/push/ann')!
  assert.deepEqual(JSON.parse(push.payload ?? ''), {
    title: 'Order 10',
    body: 'Ann, it shipped',
    data: { order_id: 10, who: 'Ann', meta: null },
  })
  assert.equal(push.headers['content-encoding'], 'aes128gcm')
  assert.ok(Number(push.headers.ttl) > 0)
  assert.equal(push.vapid?.alg, 'ES256')
  assert.equal(push.vapid?.publicKey, vapid.publicKey)
  assert.equal(push.vapid?.claims.aud, pushService.origin)
  assert.equal(push.vapid?.claims.sub, vapidSubject)
  assert.ok(Number(push.vapid?.claims.exp) * 1000 > Date.now())
  assert.equal(output.provider, 'webpush')
  assert.equal(output.status, 201)
  assert.equal(push.headers['x-observers-delivery-id'], await deliveryIdOf(db.pool, 'push-web'))
})

test('webpush: a subscription stored as JSON text works, and 429/503 are retried', async () => {
  const subscription = pushService.subscribe('flaky')
  await db.pool.query(`insert into devices (id, kind, name, sub_text) values (11, 'web-text', 'Bo', $1)`, [
    JSON.stringify(subscription),
  ])
  await eventually(
    () => pushService.pushes.filter((p) => p.path === '/push/flaky').length === 3 || undefined,
    15_000,
  )
  const pushes = pushService.pushes.filter((p) => p.path === '/push/flaky')
  assert.ok(pushes[1]!.at - pushes[0]!.at >= 950, 'waited as long as Retry-After asked')
  assert.equal(JSON.parse(pushes[2]!.payload ?? '').body, 'Bo, it shipped')
  await completedOutput(db.pool, 'push-web-text', '11')
  assert.equal(await dlqCount(db.pool, 'push-web-text'), 0)
})

test('webpush: 404 and 410 mean the subscription is gone: permanent, one attempt', async () => {
  for (const [id, name] of [
    [12, 'gone404'],
    [13, 'gone410'],
  ] as const) {
    await db.pool.query(`insert into devices (id, kind, name, subscription) values ($1, 'web', 'Cy', $2)`, [
      id,
      pushService.subscribe(name),
    ])
    const row = await dlqRow(db.pool, 'push-web', String(id))
    assert.equal(row.last_error_code, 'OB007')
    assert.equal(row.attempts, 1)
    assert.match(row.last_error, /subscription has expired or was removed/)
  }
})

test('webpush: a device_token that is not a subscription fails with OB007 and nothing is sent', async () => {
  const sent = pushService.pushes.length
  await db.pool.query(
    `insert into devices (id, kind, name, sub_text) values (14, 'web-text', 'Di', 'not json')`,
  )
  const row = await dlqRow(db.pool, 'push-web-text', '14')
  assert.equal(row.last_error_code, 'OB007')
  assert.match(row.last_error, /not a Web Push subscription/)
  assert.equal(pushService.pushes.length, sent)
})

test('the VAPID private key never reaches logs or job rows', async () => {
  // A push the service accepts and one it refuses, logged with its error; both signed with the key.
  for (const [id, name] of [
    [40, 'secret-ok'],
    [41, 'gone410'],
  ] as const) {
    await db.pool.query(`insert into devices (id, kind, name, subscription) values ($1, 'web', 'Ed', $2)`, [
      id,
      pushService.subscribe(name),
    ])
  }
  await completedOutput(db.pool, 'push-web', '40')
  await dlqRow(db.pool, 'push-web', '41')
  await assertNoSecrets(db.pool, worker.logs, [vapid.privateKey], 'push-web')
})
