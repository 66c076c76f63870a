import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startActionWorker } from '../helpers/action-worker.ts'
import type { TestDatabase } from '../helpers/db.ts'
import {
  assertNoSecrets,
  completedOutput,
  deliveryIdOf,
  dlqCount,
  dlqRow,
  missingTransportWarnings,
} from '../helpers/outcomes.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import type { TestWorker } from '../helpers/worker.ts'

let db: TestDatabase
let worker: TestWorker
const hooks: Record<string, Receiver> = {}
const env: Record<string, string> = {}
const tokenPath = '/services/T0001/B0002/s3cr3tWebhookToken'

// Slack's documented incoming-webhook errors: plain-text code, 4xx status.
const rejections = [
  { kind: 'invalid', status: 400, body: 'invalid_payload' },
  { kind: 'prohibited', status: 403, body: 'action_prohibited' },
  { kind: 'missing', status: 404, body: 'channel_not_found' },
  { kind: 'archived', status: 410, body: 'channel_is_archived' },
]

function observer(kind: string, action: Record<string, unknown>) {
  return {
    name: `slack-${kind}`,
    entity: 'tickets',
    events: ['INSERT'],
    condition: `kind = '${kind}'`,
    actions: [{ type: 'slack', message_template: 'Ticket {{ entity_id }}: {{ title }}', ...action }],
    retry: { max_attempts: 3, initial_delay_ms: 200, max_delay_ms: 5000, backoff_strategy: 'exponential' },
  }
}

before(async () => {
  const observers: Record<string, { name: string }> = {}
  for (const kind of ['ok', 'flaky', ...rejections.map((r) => r.kind)]) {
    hooks[kind] = await startReceiver()
    env[`SLACK_${kind.toUpperCase()}_URL`] = `${hooks[kind].url}${tokenPath}`
    observers[kind] = observer(kind, { webhook_url_env: `SLACK_${kind.toUpperCase()}_URL` })
  }
  observers.ok = observer('ok', {
    webhook_url_env: 'SLACK_OK_URL',
    channel: '#{{ meta.team }}',
    blocks_template: [
      { type: 'section', text: { type: 'mrkdwn', text: '*{{ title }}* (priority {{ meta.priority }})' } },
      { type: 'context', elements: '{{ meta.elements }}' },
    ],
  })
  hooks.flaky!.reply([
    { status: 429, headers: { 'retry-after': '1' }, body: 'rate_limited' },
    { status: 500 },
    { status: 200, body: 'ok' },
  ])
  for (const r of rejections) hooks[r.kind]!.reply([{ status: r.status, body: r.body }])
  observers.badtpl = observer('badtpl', {
    webhook_url_env: 'SLACK_OK_URL',
    message_template: '{{ title | url_decode }}',
  })
  observers.unset = observer('unset', { webhook_url_env: 'SLACK_NOT_SET_URL' })
  ;({ db, worker } = await startActionWorker(
    'create table tickets (id int primary key, kind text not null, title text, meta jsonb)',
    Object.values(observers),
    env,
  ))
})

after(async () => {
  await worker?.stop()
  for (const r of Object.values(hooks)) await r.close()
  await db?.drop()
})

test('posts text, channel and typed blocks to the incoming webhook and succeeds on "ok"', async () => {
  hooks.ok!.reply([{ status: 200, body: 'ok' }])
  const meta = { team: 'support', priority: 2, elements: [{ type: 'mrkdwn', text: 'via pg-observers' }] }
  await db.pool.query(`insert into tickets values (1, 'ok', 'Printer on fire', $1)`, [meta])
  const [req] = await hooks.ok!.waitFor(1)
  assert.equal(req!.method, 'POST')
  assert.equal(req!.path, tokenPath)
  assert.match(String(req!.headers['content-type']), /^application\/json/)
  assert.deepEqual(JSON.parse(req!.body), {
    text: 'Ticket 1: Printer on fire',
    channel: '#support',
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: '*Printer on fire* (priority 2)' } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: 'via pg-observers' }] },
    ],
  })
  const output = await completedOutput(db.pool, 'slack-ok')
  assert.equal(output.status, 200)
  assert.equal(req!.headers['x-observers-delivery-id'], await deliveryIdOf(db.pool, 'slack-ok'))
})

test('429 with Retry-After and a 500 are retried, then the message is delivered once', async () => {
  await db.pool.query(`insert into tickets values (2, 'flaky', 'Retry me', null)`)
  const reqs = await hooks.flaky!.waitFor(3, 15_000)
  assert.ok(reqs[1]!.at - reqs[0]!.at >= 950, 'waited as long as Retry-After asked')
  assert.deepEqual(
    reqs.map((r) => JSON.parse(r.body).text),
    ['Ticket 2: Retry me', 'Ticket 2: Retry me', 'Ticket 2: Retry me'],
  )
  await completedOutput(db.pool, 'slack-flaky')
  assert.equal(await dlqCount(db.pool, 'slack-flaky'), 0)
  assert.equal(hooks.flaky!.requests.length, 3)
})

for (const r of rejections) {
  test(`${r.status} ${r.body} is permanent: one request, then the DLQ with Slack's error`, async () => {
    const id = 10 + rejections.indexOf(r)
    await db.pool.query(`insert into tickets values ($1, $2, 'Nope', null)`, [id, r.kind])
    const row = await dlqRow(db.pool, `slack-${r.kind}`)
    assert.equal(row.last_error_code, 'OB007')
    assert.equal(row.attempts, 1)
    assert.match(row.last_error, new RegExp(`answered ${r.status}: ${r.body}`))
    assert.equal(hooks[r.kind]!.requests.length, 1)
  })
}

test('a template that fails to render goes to the DLQ as OB008 and nothing is posted', async () => {
  const before = hooks.ok!.requests.length
  await db.pool.query(`insert into tickets values (20, 'badtpl', '%zz', null)`)
  const row = await dlqRow(db.pool, 'slack-badtpl')
  assert.equal(row.last_error_code, 'OB008')
  assert.equal(row.attempts, 1)
  assert.equal(hooks.ok!.requests.length, before)
})

test('an unset webhook_url_env is reported at startup and its deliveries fail with OB005', async () => {
  assert.deepEqual(missingTransportWarnings(worker.logs, 'slack-unset'), ['SLACK_NOT_SET_URL'])
  await db.pool.query(`insert into tickets values (21, 'unset', 'Lost', null)`)
  const row = await dlqRow(db.pool, 'slack-unset')
  assert.equal(row.last_error_code, 'OB005')
  assert.match(row.last_error, /SLACK_NOT_SET_URL/)
})

test('the webhook token never reaches logs or job rows', async () => {
  // A post that succeeds and one Slack rejects, logged with its error; both URLs carry the token.
  hooks.ok!.reply([{ status: 200, body: 'ok' }])
  await db.pool.query(`insert into tickets values (30, 'ok', 'Sent', null), (31, 'invalid', 'Refused', null)`)
  await completedOutput(db.pool, 'slack-ok', '30')
  await dlqRow(db.pool, 'slack-invalid', '31')
  await assertNoSecrets(db.pool, worker.logs, ['s3cr3tWebhookToken'], 'slack-invalid')
})
