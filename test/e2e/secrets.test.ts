import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { reaped } from '../helpers/faults.ts'
import { listenPort } from '../helpers/ports.ts'
import { exited, spawnCli, waitUntilReady } from '../helpers/process.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir } from '../helpers/worker.ts'

const token = (prefix: string) => `${prefix}${randomBytes(12).toString('hex')}`

/** Every value that must never be written anywhere but where it is meant to go. */
const secrets = {
  signing: `whsec_${randomBytes(24).toString('base64')}`,
  header: token('sk_live_'),
  urlPassword: token('hookpass'),
  dbPassword: token('dbpass'),
  searchPassword: token('searchpass'),
  smtpPassword: token('smtppass'),
  redisPassword: token('redispass'),
  apiToken: token('apitoken'),
}

let db: TestDatabase
let receiver: Receiver
let env: Record<string, string>
let opsPort: number
const role = `observers_secret_${randomBytes(4).toString('hex')}`

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  // 503 once, then 400 for one row; everything else is accepted.
  let calls = 0
  receiver.reply((r) => {
    calls++
    if (r.body.includes('"entity_id":"2"') && calls < 4) return { status: 503, body: 'try later' }
    if (r.body.includes('"entity_id":"3"')) return { status: 400, body: 'rejected' }
    return { status: 200 }
  })
  await db.pool.query('create table invoices (id int primary key, total int)')
  // A login with a password, so DATABASE_URL carries one (trust auth may not even check it).
  await db.pool.query(`create role ${role} login superuser password '${secrets.dbPassword}'`)
  const dbUrl = new URL(db.url)
  dbUrl.username = role
  dbUrl.password = secrets.dbPassword
  const closedPort = await listenPort()
  opsPort = await listenPort()
  const hook = (name: string, action: Record<string, unknown>) => ({
    name,
    entity: 'invoices',
    events: ['INSERT'],
    retry: { max_attempts: 3, initial_delay_ms: 100, backoff_strategy: 'fixed' },
    actions: [{ type: 'webhook', ...action }],
  })
  const dir = await observersDir({
    'signed.json': hook('signed', {
      url: `${receiver.url}/signed`,
      signing_secret_env: 'INVOICE_SIGNING_SECRET',
      headers_env: { Authorization: 'INVOICE_API_TOKEN' },
    }),
    'credentialed.json': hook('credentialed', { url_env: 'INVOICE_HOOK_URL' }),
    'unreachable.json': hook('unreachable', {
      url_env: 'INVOICE_DEAD_URL',
      headers_env: { 'X-Key': 'INVOICE_API_TOKEN' },
    }),
  })
  env = {
    DATABASE_URL: dbUrl.toString(),
    OBSERVERS_DIR: dir,
    PORT: String(opsPort),
    LOG_LEVEL: 'debug',
    OBSERVERS_API_TOKEN: secrets.apiToken,
    INVOICE_SIGNING_SECRET: secrets.signing,
    INVOICE_API_TOKEN: `Bearer ${secrets.header}`,
    INVOICE_HOOK_URL: `http://hooker:${secrets.urlPassword}@127.0.0.1:${new URL(receiver.url).port}/creds`,
    INVOICE_DEAD_URL: `http://hooker:${secrets.urlPassword}@127.0.0.1:${closedPort}/dead`,
    SEARCH_URL: `http://elastic:${secrets.searchPassword}@127.0.0.1:${closedPort}/`,
    SMTP_URL: `smtp://mailer:${secrets.smtpPassword}@127.0.0.1:${closedPort}`,
    REDIS_URL: `redis://:${secrets.redisPassword}@127.0.0.1:${closedPort}`,
  }
})

after(async () => {
  await receiver?.close()
  await db?.pool.query(`drop role if exists ${role}`).catch(() => {})
  await db?.drop()
})

/** Names the secrets found in `text`, if any. */
function leaks(where: string, text: string): string[] {
  return Object.entries(secrets)
    .filter(([, value]) => text.includes(value))
    .map(([name]) => `${name} in ${where}`)
}

async function get(path: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${opsPort}${path}`, {
    headers: { authorization: `Bearer ${secrets.apiToken}` },
  })
  return `${res.status} ${await res.text()}`
}

/** Every row of every table in the observers and pgboss schemas, as text. */
async function everyStoredRow(): Promise<Array<[string, string]>> {
  const { rows: tables } = await db.pool.query<{ name: string }>(
    `select format('%I.%I', table_schema, table_name) as name from information_schema.tables
      where table_schema in ('observers', 'pgboss')`,
  )
  const out: Array<[string, string]> = []
  for (const { name } of tables) {
    const { rows } = await db.pool.query<{ t: string }>(`select t::text as t from ${name} t`)
    out.push([name, rows.map((r) => r.t).join('\n')])
  }
  return out
}

/** Server-sent events of executions, collected until `stop` is called. */
function collectStream() {
  const ctl = new AbortController()
  let text = ''
  const done = fetch(`http://127.0.0.1:${opsPort}/api/stream`, {
    headers: { authorization: `Bearer ${secrets.apiToken}` },
    signal: ctl.signal,
  })
    .then(async (res) => {
      for await (const chunk of res.body ?? []) text += Buffer.from(chunk).toString('utf8')
    })
    .catch(() => {})
  return {
    stop: async () => {
      ctl.abort()
      await done
      return text
    },
  }
}

test('secrets never reach logs, job rows, the DLQ, the change log or the ops API', async (t) => {
  const worker = reaped(spawnCli(['start'], env))
  t.after(() => void worker.kill('SIGKILL'))
  await waitUntilReady(worker, opsPort)
  const stream = collectStream()
  await db.pool.query('insert into invoices select g, g * 100 from generate_series(1, 5) g')
  await eventually(
    async () => {
      const { rows } = await db.pool.query('select count(*)::int as n from observers.dlq')
      return rows[0].n >= 6 && receiver.requests.filter((r) => r.path === '/creds').length >= 5
    },
    30_000,
    'deliveries done and failures dead-lettered',
  )
  // A lost listener connection and a reconnect add their own log lines.
  const { rows: lost } = await db.pool.query<{ pid: number }>(
    `select pid, pg_terminate_backend(pid) from pg_stat_activity where application_name = 'pg-observers-listener'`,
  )
  await eventually(
    async () => {
      const { rows } = await db.pool.query(
        `select 1 from pg_stat_activity where application_name = 'pg-observers-listener' and pid <> all($1::int[])`,
        [lost.map((l) => l.pid)],
      )
      return rows.length > 0
    },
    60_000,
    'the listener reconnected',
  )
  const responses: Array<[string, string]> = []
  for (const path of ['/healthz', '/readyz', '/metrics', '/api/observers', '/api/dlq']) {
    responses.push([path, await get(path)])
  }
  const { rows: dead } = await db.pool.query<{ id: string }>('select id from observers.dlq')
  for (const { id } of dead) responses.push([`/api/dlq/${id}`, await get(`/api/dlq/${id}`)])
  const streamed = await stream.stop()
  worker.kill('SIGTERM')
  assert.equal((await exited(worker)).code, 0)

  const signed = receiver.requests.find((r) => r.path === '/signed')!
  assert.equal(signed.headers.authorization, `Bearer ${secrets.header}`, 'the header secret was in use')
  assert.ok(signed.headers['webhook-signature'], 'the signing secret was in use')
  assert.deepEqual(
    leaks('a probe', `x${secrets.urlPassword}x`),
    ['urlPassword in a probe'],
    'the scan finds what it looks for',
  )
  const found = [
    ...leaks('worker output', worker.output.join('')),
    ...leaks('the execution stream', streamed),
    ...responses.flatMap(([path, body]) => leaks(`GET ${path}`, body)),
    ...(await everyStoredRow()).flatMap(([table, text]) => leaks(table, text)),
  ]
  console.log(
    `secrets scan: ${Object.keys(secrets).length} secrets, ${worker.output.join('').split('\n').length} log lines, ${responses.length} API responses, ${dead.length} dead letters: ${found.length} leaks`,
  )
  assert.deepEqual(found, [])
  assert.ok(
    responses.some(([path, body]) => path === '/metrics' && body.startsWith('200')),
    '/metrics was scanned',
  )
  assert.ok(
    responses.some(([path, body]) => path === '/api/dlq' && body.startsWith('200')),
    '/api/dlq was scanned',
  )
})
