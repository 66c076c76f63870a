import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { lean, observerFiles, scripted, withWorker } from '../helpers/action-worker.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type FakeFcm, type FcmReply, fcmError, fcmScope, startFakeFcm } from '../helpers/fake-fcm.ts'
import {
  assertNoSecrets,
  completedOutput,
  deliveryIdOf,
  dlqCount,
  dlqRow,
  missingTransportWarnings,
} from '../helpers/outcomes.ts'
import {
  fcmAction,
  pushObserver as observer,
  devicesTableSql as tableSql,
  webAction,
} from '../helpers/push-fixture.ts'
import { eventually, runWorker, type TestWorker } from '../helpers/worker.ts'

let db: TestDatabase
let fcm: FakeFcm
let worker: TestWorker

before(async () => {
  fcm = await startFakeFcm()
  fcm.reply(
    scripted<{ body: { message?: Record<string, unknown> } }, FcmReply>(
      {
        'tok-flaky': [
          { ...fcmError(429, 'RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED'), headers: { 'retry-after': '1' } },
          fcmError(500, 'INTERNAL', 'INTERNAL'),
          { status: 200 },
        ],
        'tok-gone': [fcmError(404, 'NOT_FOUND', 'UNREGISTERED')],
        'tok-invalid': [fcmError(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT')],
      },
      (s) => String(s.body.message?.token),
      { status: 200 },
    ),
  )
})

after(() => fcm?.close())

function sendsTo(token: string) {
  return fcm.sends.filter((s) => s.body.message?.token === token)
}

describe('with FCM_SERVICE_ACCOUNT set', () => {
  before(async () => {
    db = await createTestDatabase()
    await db.pool.query(tableSql)
    const dir = await observerFiles(
      observer('fcm', fcmAction),
      observer('fcm-badtpl', { ...fcmAction, title_template: '{{ name | url_decode }}' }),
    )
    worker = await runWorker(db.url, dir, {
      ...lean,
      FCM_SERVICE_ACCOUNT: fcm.serviceAccount,
      FCM_API_BASE: fcm.apiBase,
    })
  })

  after(async () => {
    await worker?.stop()
    await db?.drop()
  })

  test('fcm: exchanges a signed service-account JWT for a token, then posts the v1 message', async () => {
    await db.pool.query(
      `insert into devices (id, kind, name, token, meta) values (1, 'fcm', 'Ann', 'tok-ann', '{"vip":true}')`,
    )
    const output = await completedOutput(db.pool, 'push-fcm')
    assert.equal(fcm.tokens.length, 1)
    const [exchange] = fcm.tokens
    assert.equal(exchange!.grantType, 'urn:ietf:params:oauth:grant-type:jwt-bearer')
    assert.equal(exchange!.claims.iss, fcm.clientEmail)
    assert.equal(exchange!.claims.scope, fcmScope)
    const [send] = sendsTo('tok-ann')
    assert.equal(send!.path, `/v1/projects/${fcm.projectId}/messages:send`)
    assert.ok(send!.authorized, 'Bearer token is the one the token endpoint issued')
    assert.deepEqual(send!.body, {
      message: {
        token: 'tok-ann',
        notification: { title: 'Order 1', body: 'Ann, it shipped' },
        data: { order_id: '1', who: 'Ann', meta: '{"vip":true}' },
      },
    })
    assert.equal(output.provider, 'fcm')
    assert.match(String(output.message_name), /^projects\/demo-project\/messages\//)
    assert.equal(send!.deliveryId, await deliveryIdOf(db.pool, 'push-fcm'))
  })

  test('fcm: the access token is cached across sends', async () => {
    await db.pool.query(`insert into devices (id, kind, name, token) values (2, 'fcm', 'Bo', 'tok-bo')`)
    await eventually(() => sendsTo('tok-bo').length === 1 || undefined, 10_000, 'second send')
    assert.equal(fcm.tokens.length, 1)
    assert.ok(sendsTo('tok-bo')[0]!.authorized)
  })

  test('fcm: 429 with Retry-After and 500 are retried, then delivered', async () => {
    await db.pool.query(`insert into devices (id, kind, name, token) values (3, 'fcm', 'Cy', 'tok-flaky')`)
    await eventually(() => sendsTo('tok-flaky').length === 3 || undefined, 15_000, 'three attempts')
    const [first, second] = sendsTo('tok-flaky')
    assert.ok(second!.at - first!.at >= 950, 'waited as long as Retry-After asked')
    await completedOutput(db.pool, 'push-fcm', '3')
    assert.equal(sendsTo('tok-flaky').length, 3)
    assert.equal(await dlqCount(db.pool, 'push-fcm'), 0)
  })

  test('fcm: UNREGISTERED (404) and INVALID_ARGUMENT (400) are permanent', async () => {
    await db.pool.query(
      `insert into devices (id, kind, name, token) values (4, 'fcm', 'Di', 'tok-gone'), (5, 'fcm', 'Ed', 'tok-invalid')`,
    )
    const gone = await dlqRow(db.pool, 'push-fcm', '4')
    assert.equal(gone.last_error_code, 'OB007')
    assert.match(gone.last_error, /FCM answered 404 UNREGISTERED/)
    const invalid = await dlqRow(db.pool, 'push-fcm', '5')
    assert.match(invalid.last_error, /FCM answered 400 INVALID_ARGUMENT/)
    assert.deepEqual([gone.attempts, invalid.attempts], [1, 1])
    assert.equal(sendsTo('tok-gone').length + sendsTo('tok-invalid').length, 2)
  })

  test('fcm: a template that fails to render goes to the DLQ as OB008', async () => {
    const sent = fcm.sends.length
    await db.pool.query(
      `insert into devices (id, kind, name, token) values (6, 'fcm-badtpl', '%zz', 'tok-x')`,
    )
    const row = await dlqRow(db.pool, 'push-fcm-badtpl')
    assert.equal(row.last_error_code, 'OB008')
    assert.equal(fcm.sends.length, sent)
  })

  test('neither the service-account key nor the access token reaches logs or job rows', async () => {
    // A message FCM accepts and one it refuses, logged with its error; both sent with a token.
    await db.pool.query(
      `insert into devices (id, kind, name, token) values (50, 'fcm', 'Jo', 'tok-sec'), (51, 'fcm', 'Jo', 'tok-gone')`,
    )
    await completedOutput(db.pool, 'push-fcm', '50')
    await dlqRow(db.pool, 'push-fcm', '51')
    const key = JSON.parse(fcm.serviceAccount).private_key as string
    const accessTokens = fcm.sends.map((s) => String(s.authorization).replace('Bearer ', ''))
    assert.ok(accessTokens.length > 0, 'access tokens to look for')
    await assertNoSecrets(db.pool, worker.logs, [key.split('\n')[1]!, ...accessTokens], 'push-fcm')
  })
})

const bareObservers = [
  observer('fcm', fcmAction),
  observer('web', webAction),
  observer('default', { device_token: '{{ token }}' }),
]

test('unconfigured providers are reported at startup and their deliveries fail with OB005', async () => {
  await withWorker(tableSql, bareObservers, {}, async (w, d) => {
    assert.deepEqual(missingTransportWarnings(w.logs, 'push-fcm'), ['FCM_SERVICE_ACCOUNT'])
    assert.deepEqual(missingTransportWarnings(w.logs, 'push-web'), [
      'VAPID_PUBLIC_KEY',
      'VAPID_PRIVATE_KEY',
      'VAPID_SUBJECT',
    ])
    await d.pool.query(
      `insert into devices (id, kind, name, token, subscription) values
      (1, 'fcm', 'Ed', 'tok-ed', null), (2, 'web', 'Ed', null, $1)`,
      [{ endpoint: 'https://push.example.net/push/ed', keys: { p256dh: 'unused', auth: 'unused' } }],
    )
    const noFcm = await dlqRow(d.pool, 'push-fcm')
    assert.equal(noFcm.last_error_code, 'OB005')
    assert.match(noFcm.last_error, /FCM_SERVICE_ACCOUNT is not set/)
    const noVapid = await dlqRow(d.pool, 'push-web')
    assert.equal(noVapid.last_error_code, 'OB005')
    assert.match(noVapid.last_error, /VAPID_PUBLIC_KEY is not set/)
  })
})

test('FCM_SERVICE_ACCOUNT may be a path to the key file, and makes fcm the default provider', async (t) => {
  const keyFile = path.join(tmpdir(), `fcm-key-${process.pid}.json`)
  await writeFile(keyFile, fcm.serviceAccount)
  t.after(() => rm(keyFile, { force: true }))
  await withWorker(
    tableSql,
    bareObservers,
    { FCM_SERVICE_ACCOUNT: keyFile, FCM_API_BASE: fcm.apiBase },
    async (_w, d) => {
      await d.pool.query(
        `insert into devices (id, kind, name, token) values (1, 'default', 'Flo', 'tok-flo')`,
      )
      await completedOutput(d.pool, 'push-default')
      assert.equal(sendsTo('tok-flo').length, 1)
      assert.ok(sendsTo('tok-flo')[0]!.authorized)
    },
  )
})

test('fcm: a service account whose JWT the token endpoint refuses fails permanently', async () => {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  })
  const forged = JSON.stringify({ ...JSON.parse(fcm.serviceAccount), private_key: privateKey })
  const sent = fcm.sends.length
  await withWorker(
    tableSql,
    bareObservers,
    { FCM_SERVICE_ACCOUNT: forged, FCM_API_BASE: fcm.apiBase },
    async (_w, d) => {
      await d.pool.query(`insert into devices (id, kind, name, token) values (1, 'fcm', 'Gil', 'tok-gil')`)
      const row = await dlqRow(d.pool, 'push-fcm')
      assert.equal(row.last_error_code, 'OB007')
      assert.equal(row.attempts, 1)
      assert.match(row.last_error, /FCM access token request failed \(400\): invalid_grant/)
      assert.equal(fcm.sends.length, sent, 'nothing was sent without a token')
    },
  )
})
