import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createLogger, registerSecretValues } from '../../src/log/log.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, logSink, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

const signingSecret = 'whsec_c2lnbmluZy1zZWNyZXQtdmFsdWUtMTIzNA=='
const headerSecret = 'Bearer hdr-7Qm2-secret-token'
const dbPassword = 'Pg-Pa55-w0rd-xyz'

let db: TestDatabase
let worker: TestWorker
let receiver: Receiver

before(async () => {
  db = await createTestDatabase('create table items (id int primary key)')
  receiver = await startReceiver()
  // The receiver echoes every request header in its error body: the error message (and the
  // outcome log line) would carry the secret header if nothing scrubbed it.
  receiver.reply((req) => ({ status: 400, body: `rejected; you sent ${JSON.stringify(req.headers)}` }))
  const dir = await observersDir({
    'echo.json': {
      name: 'echo',
      entity: 'items',
      events: ['INSERT'],
      actions: [
        {
          type: 'webhook',
          url: receiver.url,
          headers_env: { Authorization: 'ECHO_AUTH' },
          signing_secret_env: 'ECHO_SIGNING_SECRET',
        },
      ],
      on_failure: 'alert',
    },
  })
  const url = new URL(db.url)
  url.password = dbPassword
  worker = await runWorker(url.toString(), dir, {
    ECHO_AUTH: headerSecret,
    ECHO_SIGNING_SECRET: signingSecret,
    OBSERVERS_CONCURRENCY: '4',
  })
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

test('no configured secret appears anywhere in a worker run’s logs', async () => {
  await db.pool.query('insert into items values (1)')
  const [req] = await receiver.waitFor(1)
  assert.equal(req!.headers.authorization, headerSecret, 'the secret header was sent')
  const failure = await eventually(
    () => worker.logs.records.find((r) => r.outcome === 'failed' && r.observer === 'echo'),
    10_000,
    'the failure line',
  )
  assert.match(String(failure.error), /answered 400: rejected; you sent/, 'the echo was logged')
  assert.ok(worker.logs.lines.length > 5)
  const everything = worker.logs.lines.join('\n')
  for (const secret of [signingSecret, headerSecret, 'hdr-7Qm2-secret-token', dbPassword]) {
    assert.equal(everything.includes(secret), false, `"${secret}" leaked into the logs`)
  }
  assert.match(everything, /\[redacted\]/)
})

test('the logger masks URL credentials, auth headers, tokens and registered values', () => {
  const { sink, stream } = logSink()
  const log = createLogger('info', stream)
  registerSecretValues(['s3cr3t-registered', 'tiny'])
  log.info({ url: 'postgres://app:pw-in-url@db.internal:5432/app' }, 'connecting to redis://u:pw2@cache:6379')
  log.info({ headers: { authorization: 'Basic abc', cookie: 'sid=1' }, token: 't0k', password: 'p' }, 'req')
  log.warn({ detail: 'value s3cr3t-registered inside', nested: { api_key: 'k' } }, 'tiny stays readable')
  const text = sink.lines.join('\n')
  for (const secret of ['pw-in-url', 'pw2', 'Basic abc', 'sid=1', 't0k', '"p"', 's3cr3t-registered', '"k"'])
    assert.equal(text.includes(secret), false, secret)
  assert.equal(sink.records[0]!.url, 'postgres://***@db.internal:5432/app')
  assert.equal(sink.records[0]!.msg, 'connecting to redis://***@cache:6379')
  assert.equal(sink.records[2]!.msg, 'tiny stays readable', 'values under 6 characters are not scrubbed')
})

test('redaction censors every configured path, one or two levels down, and leaves the logged object as it was', () => {
  const { sink, stream } = logSink()
  const log = createLogger('info', stream)
  const record = {
    req: { headers: { 'x-api-key': 'xk-1', cookie: 'c-1', accept: 'json' } },
    upstream: { headers: { Authorization: 'Bearer up-1' }, apiToken: 'at-1', status: 200 },
    secret: 's-1',
    observer: 'orders',
  }
  const before = JSON.stringify(record)
  log.info(record, 'with secrets')
  log.info({ observer: 'orders', attempt: 2 }, 'without')
  assert.equal(JSON.stringify(record), before, 'the caller’s object is not changed')
  const [logged, plain] = sink.records
  assert.deepEqual(logged!.req, {
    headers: { 'x-api-key': '[redacted]', cookie: '[redacted]', accept: 'json' },
  })
  assert.deepEqual(logged!.upstream, {
    headers: { Authorization: '[redacted]' },
    apiToken: '[redacted]',
    status: 200,
  })
  assert.equal(logged!.secret, '[redacted]')
  assert.equal(logged!.observer, 'orders')
  assert.equal(plain!.attempt, 2)
})
