import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { after, before, describe, test } from 'node:test'
import { Webhook } from 'standardwebhooks'
import { kindObserver, startActionWorker } from '../helpers/action-worker.ts'
import type { TestDatabase } from '../helpers/db.ts'
import type { DlqRow } from '../helpers/outcomes.ts'
import { type ReceivedRequest, type Receiver, type Reply, startReceiver } from '../helpers/receiver.ts'
import { eventually, type TestWorker } from '../helpers/worker.ts'
import { api } from '../ops/helpers.ts'

const tableSql = 'create table hooks (id serial primary key, kind text not null, ref text, name text)'
const rawSecret = 'plain-signing-secret-1234'
const whsecSecret = `whsec_${randomBytes(24).toString('base64')}`
const apiToken = 'ops-api-token-abcdef'
const pathSecret = 'T0SECRETPATHxyz'
const querySecret = 'Q0SECRETQUERYxyz'
const echoPassword = 'echo-pass-7890'

let receiver: Receiver
let db: TestDatabase
let worker: TestWorker
let closedPort: number

/** The receiver's answer per path: /flaky fails once, /down always, /echo echoes Authorization. */
function answer(req: ReceivedRequest): Reply {
  if (req.path.startsWith('/flaky') && receiver.requests.filter((r) => r.path === req.path).length === 1)
    return { status: 503, body: 'busy' }
  if (req.path.startsWith('/hooks/')) return { status: 503, body: 'unavailable' }
  if (req.path === '/echo') return { status: 401, body: `refused credentials: ${req.headers.authorization}` }
  return { status: 200 }
}

/** The observer's dead letters, once there are `count`. */
function deadLetters(observer: string, count = 1): Promise<DlqRow[]> {
  return eventually(
    async () => {
      const { rows } = await db.pool.query<DlqRow>(
        'select * from observers.dlq where observer = $1 order by entity_id::int',
        [observer],
      )
      return rows.length >= count ? rows : undefined
    },
    20_000,
    `${count} dead letters of ${observer}`,
  )
}

/** Inserts one row per `ref` for the observer `kind`. */
async function insert(kind: string, ...refs: Array<string | null>): Promise<void> {
  for (const ref of refs) await db.pool.query('insert into hooks (kind, ref) values ($1, $2)', [kind, ref])
}

function requestsTo(prefix: string): ReceivedRequest[] {
  return receiver.requests.filter((r) => r.path.startsWith(prefix))
}

function closedTcpPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

before(async () => {
  receiver = await startReceiver()
  receiver.reply(answer)
  closedPort = await closedTcpPort()
  const port = new URL(receiver.url).port
  const hook = (name: string, action: Record<string, unknown>) =>
    kindObserver('hooks', name, { type: 'webhook', ...action })
  ;({ db, worker } = await startActionWorker(
    tableSql,
    [
      hook('segment', { url: `${receiver.url}/items/{{ ref | path_segment }}`, method: 'DELETE' }),
      hook('encoded', { url: `${receiver.url}/things/{{ ref | url_encode }}`, method: 'DELETE' }),
      hook('plain', { url: `${receiver.url}/flaky/{{ ref | path_segment }}` }),
      hook('signed-raw', { url: `${receiver.url}/signed-raw`, signing_secret_env: 'RAW_SECRET' }),
      hook('signed-whsec', { url: `${receiver.url}/signed-whsec`, signing_secret_env: 'WHSEC_SECRET' }),
      hook('crlf', { url: `${receiver.url}/crlf`, headers: { 'x-customer': '{{ name }}' } }),
      hook('env-url', { url_env: 'SECRET_HOOK_URL' }),
      hook('env-down', { url_env: 'SECRET_DOWN_URL' }),
      hook('echo', { url_env: 'ECHO_URL' }),
    ],
    {
      OBSERVERS_API_TOKEN: apiToken,
      RAW_SECRET: rawSecret,
      WHSEC_SECRET: whsecSecret,
      // Non-canonical spellings: upper-case scheme, a dot segment, a query string.
      SECRET_HOOK_URL: `HTTP://127.0.0.1:${port}/x/../hooks/${pathSecret}?token=${querySecret}`,
      SECRET_DOWN_URL: `http://127.0.0.1:${closedPort}/hooks/${pathSecret}/?token=${querySecret}`,
      ECHO_URL: `http://hookuser:${echoPassword}@127.0.0.1:${port}/echo`,
    },
  ))
})

after(async () => {
  await worker?.stop()
  await db?.drop()
  await receiver?.close()
})

describe('row values in a URL path', () => {
  test('path_segment refuses "." and "..": OB008, dead-lettered, no request sent', async () => {
    await insert('segment', '..', '.', '', 'a/b ?')
    const dead = await deadLetters('segment', 3)
    for (const row of dead) {
      assert.equal(row.last_error_code, 'OB008', row.last_error)
      assert.equal(row.attempts, 1, 'permanent: not retried')
      assert.match(row.last_error, /cannot be a URL path segment/)
    }
    await eventually(() => requestsTo('/items/')[0])
    assert.deepEqual(
      requestsTo('/items').map((r) => `${r.method} ${r.path}`),
      ['DELETE /items/a%2Fb%20%3F'],
      'only the ordinary value was sent, as one segment',
    )
  })

  test('a rendered dot segment is refused even without the filter (url_encode keeps dots)', async () => {
    await insert('encoded', '..', '.', '%2e%2E', '.x')
    const dead = await deadLetters('encoded', 2)
    for (const row of dead) {
      assert.equal(row.last_error_code, 'OB008', row.last_error)
      assert.match(row.last_error, /path_segment filter/)
    }
    await eventually(() => requestsTo('/things/').length >= 2)
    assert.deepEqual(
      requestsTo('/things')
        .map((r) => `${r.method} ${r.path}`)
        .sort(),
      ['DELETE /things/%252e%252E', 'DELETE /things/.x'],
    )
    assert.equal(
      receiver.requests.filter((r) => r.path === '/' || r.path === '/things/').length,
      0,
      'no DELETE of a collection',
    )
  })
})

describe('delivery identity', () => {
  test('every webhook carries webhook-id and webhook-timestamp; the default body says which delivery and attempt', async () => {
    await insert('plain', 'p1')
    const [first, second] = await eventually(() => {
      const got = requestsTo('/flaky/p1')
      return got.length >= 2 ? got : undefined
    })
    assert.ok(first && second)
    const { rows } = await db.pool.query<{ id: string }>(
      `select data ->> 'delivery_id' as id from pgboss.job where data ->> 'observer' = 'plain'`,
    )
    const deliveryId = rows[0]?.id
    assert.ok(deliveryId)
    for (const [i, req] of [first, second].entries()) {
      assert.equal(req.headers['webhook-id'], deliveryId, 'unsigned, and still identified')
      assert.match(String(req.headers['webhook-timestamp']), /^\d{10}$/)
      assert.equal(req.headers['webhook-signature'], undefined)
      const body = JSON.parse(req.body) as Record<string, unknown>
      assert.deepEqual(Object.keys(body), [
        'id',
        'seq',
        'event',
        'entity',
        'entity_id',
        'before',
        'after',
        'changed',
        'tenant_id',
        'actor_id',
        'txid',
        'created_at',
        'observer',
        'delivery_id',
        'attempt',
      ])
      assert.equal(body.observer, 'plain')
      assert.equal(body.delivery_id, deliveryId)
      assert.equal(body.attempt, i + 1, 'the retry says it is attempt 2')
    }
  })

  test('signatures verify with the official standardwebhooks library, raw and whsec_ secrets', async () => {
    await insert('signed-raw', 's1')
    await insert('signed-whsec', 's2')
    const raw = await eventually(() => requestsTo('/signed-raw')[0])
    const whsec = await eventually(() => requestsTo('/signed-whsec')[0])
    const headers = (r: ReceivedRequest) => ({
      'webhook-id': String(r.headers['webhook-id']),
      'webhook-timestamp': String(r.headers['webhook-timestamp']),
      'webhook-signature': String(r.headers['webhook-signature']),
    })
    const verifiedRaw = new Webhook(rawSecret, { format: 'raw' }).verify(raw.body, headers(raw))
    assert.equal((verifiedRaw as { delivery_id: string }).delivery_id, raw.headers['webhook-id'])
    const verifiedWhsec = new Webhook(whsecSecret).verify(whsec.body, headers(whsec))
    assert.equal((verifiedWhsec as { observer: string }).observer, 'signed-whsec')
    assert.throws(() => new Webhook(rawSecret, { format: 'raw' }).verify(`${raw.body} `, headers(raw)))
  })
})

test('a header that renders a line break is a permanent OB008, never sent, never retried', async () => {
  await db.pool.query(`insert into hooks (kind, name) values ('crlf', e'Ann\\r\\nx-admin: yes')`)
  const [row] = await deadLetters('crlf')
  assert.equal(row?.last_error_code, 'OB008', row?.last_error)
  assert.equal(row?.attempts, 1)
  assert.equal(requestsTo('/crlf').length, 0)
})

describe('URLs in errors', () => {
  /** Every spelling of the URL's secret parts that could leak. */
  const secretSpellings = [pathSecret, querySecret, pathSecret.toLowerCase(), 'token=']

  test('an env URL shows scheme, host and port only: in the DLQ, job rows, logs and the API', async () => {
    await insert('env-url', 'e1')
    await insert('env-down', 'e2')
    const [answered] = await deadLetters('env-url')
    const [refused] = await deadLetters('env-down')
    const port = new URL(receiver.url).port
    assert.match(
      answered?.last_error ?? '',
      new RegExp(`webhook http://127\\.0\\.0\\.1:${port}/… answered 503`),
    )
    assert.match(refused?.last_error ?? '', new RegExp(`http://127\\.0\\.0\\.1:${closedPort}/…`))
    assert.ok(requestsTo(`/hooks/${pathSecret}`).length > 0, 'the secret URL was in use')
    const { rows } = await db.pool.query<{ t: string }>(
      `select coalesce(string_agg(t::text, ' '), '') as t from (
         select data::text || coalesce(output::text, '') as t from pgboss.job
         union all select d::text from observers.deliveries d
         union all select d::text from observers.dlq d) t`,
    )
    const dlqApi = await api(worker.worker, '/api/dlq', { token: apiToken })
    assert.equal(dlqApi.status, 200)
    const places = {
      'stored rows': rows[0]?.t ?? '',
      logs: worker.logs.lines.join('\n'),
      'the DLQ API': JSON.stringify(dlqApi.body),
    }
    for (const [where, text] of Object.entries(places)) {
      assert.ok(text.includes(`127.0.0.1:${port}/…`), `${where} name the host`)
      for (const secret of secretSpellings)
        assert.ok(!text.includes(secret), `${where} hold "${secret}" of the env URL`)
    }
  })

  test('an Authorization header echoed back in an error body is scrubbed from the stored error', async () => {
    await insert('echo', 'c1')
    const [row] = await deadLetters('echo')
    const sent = requestsTo('/echo')[0]
    const basic = Buffer.from(`hookuser:${echoPassword}`).toString('base64')
    assert.equal(sent?.headers.authorization, `Basic ${basic}`, 'the credentials were in use')
    assert.match(row?.last_error ?? '', /refused credentials: Basic \[redacted\]/)
    const logs = worker.logs.lines.join('\n')
    assert.ok(!logs.includes(basic), 'the logs hold the echoed credentials')
  })
})
