import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startActionWorker, withWorker } from '../helpers/action-worker.ts'
import type { TestDatabase } from '../helpers/db.ts'
import {
  assertNoSecrets,
  completedOutput,
  deliveryIdOf,
  dlqCount,
  dlqRow,
  missingTransportWarnings,
} from '../helpers/outcomes.ts'
import { type ReceivedRequest, type Receiver, type Reply, startReceiver } from '../helpers/receiver.ts'
import type { TestWorker } from '../helpers/worker.ts'

let db: TestDatabase
let twilio: Receiver
let worker: TestWorker
const sid = `AC${'0123456789abcdef'.repeat(2)}`
const authToken = 'tw1l1oAuthTokenSecret'
const service = `MG${'fedcba9876543210'.repeat(2)}`
const tableSql = 'create table customers (id int primary key, kind text not null, name text, phone text)'
const messagesPath = `/2010-04-01/Accounts/${sid}/Messages.json`

// Twilio's REST errors, keyed by the To number that provokes them in this fake.
const twilioErrors: Record<string, { status: number; code: number; message: string }> = {
  '+15005550001': {
    status: 400,
    code: 21211,
    message: "The 'To' number +15005550001 is not a valid phone number.",
  },
  '+15005550002': { status: 400, code: 21610, message: 'Attempt to send to unsubscribed recipient' },
  '+15005550003': { status: 400, code: 21614, message: "'To' number is not a valid mobile number" },
  '+15005550004': {
    status: 400,
    code: 21408,
    message: 'Permission to send an SMS has not been enabled for the region',
  },
  '+15005550005': { status: 401, code: 20003, message: 'Authenticate' },
}
const flakyReplies: Reply[] = [
  {
    status: 429,
    headers: { 'retry-after': '1' },
    body: JSON.stringify({ code: 20429, message: 'Too Many Requests' }),
  },
  { status: 503, body: 'upstream unavailable' },
]
let flakyServed = 0

function fakeTwilio(req: ReceivedRequest): Reply {
  const expected = `Basic ${Buffer.from(`${sid}:${authToken}`).toString('base64')}`
  if (req.path !== messagesPath || req.headers.authorization !== expected) {
    return { status: 401, body: JSON.stringify({ code: 20003, message: 'Authenticate', status: 401 }) }
  }
  const to = new URLSearchParams(req.body).get('To') ?? ''
  const error = twilioErrors[to]
  if (error)
    return {
      status: error.status,
      body: JSON.stringify({ ...error, more_info: 'https://www.twilio.com/docs/errors' }),
    }
  if (to === '+15005550009' && flakyServed < flakyReplies.length) return flakyReplies[flakyServed++]!
  return { status: 201, body: JSON.stringify({ sid: `SM${req.at}`, status: 'queued', to }) }
}

function observer(kind: string, action: Record<string, unknown> = {}) {
  return {
    name: `sms-${kind}`,
    entity: 'customers',
    events: ['INSERT'],
    condition: `kind = '${kind}'`,
    actions: [
      {
        type: 'sms',
        phone: '{{ phone }}',
        message_template: 'Hi {{ name }}, order {{ entity_id }} shipped',
        ...action,
      },
    ],
    retry: { max_attempts: 3, initial_delay_ms: 200, max_delay_ms: 5000, backoff_strategy: 'exponential' },
  }
}

function formOf(req: ReceivedRequest): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(req.body))
}

function requestsTo(phone: string): ReceivedRequest[] {
  return twilio.requests.filter((r) => new URLSearchParams(r.body).get('To') === phone)
}

describe('with Twilio configured', () => {
  before(async () => {
    twilio = await startReceiver()
    twilio.reply(fakeTwilio)
    ;({ db, worker } = await startActionWorker(
      tableSql,
      [
        observer('ok'),
        observer('service', { from: service }),
        observer('flaky'),
        observer('rejected'),
        observer('badtpl', { message_template: 'Hi {{ name | url_decode }}' }),
      ],
      {
        TWILIO_ACCOUNT_SID: sid,
        TWILIO_AUTH_TOKEN: authToken,
        TWILIO_FROM: '+15017122661',
        TWILIO_API_BASE: `${twilio.url}/`,
      },
    ))
  })

  after(async () => {
    await worker?.stop()
    await twilio?.close()
    await db?.drop()
  })

  test('sends To, From and Body form-encoded with Basic auth, the number normalised to E.164', async () => {
    await db.pool.query(`insert into customers values (1, 'ok', 'Ada', '+1 (415) 555-0100')`)
    const [req] = await twilio.waitFor(1)
    assert.equal(req!.method, 'POST')
    assert.equal(req!.path, messagesPath)
    assert.equal(req!.headers['content-type'], 'application/x-www-form-urlencoded')
    assert.deepEqual(formOf(req!), {
      To: '+14155550100',
      Body: 'Hi Ada, order 1 shipped',
      From: '+15017122661',
    })
    const output = await completedOutput(db.pool, 'sms-ok')
    assert.equal(output.status, 201)
    assert.equal(output.message_status, 'queued')
    assert.match(String(output.sid), /^SM/)
    assert.equal(req!.headers['x-observers-delivery-id'], await deliveryIdOf(db.pool, 'sms-ok'))
  })

  test('a Messaging Service SID as "from" is sent as MessagingServiceSid', async () => {
    await db.pool.query(`insert into customers values (2, 'service', 'Bo', '+442071838750')`)
    await completedOutput(db.pool, 'sms-service')
    const [req] = requestsTo('+442071838750')
    assert.deepEqual(formOf(req!), {
      To: '+442071838750',
      Body: 'Hi Bo, order 2 shipped',
      MessagingServiceSid: service,
    })
  })

  test('429 (error 20429) with Retry-After, then 503, are retried until Twilio accepts', async () => {
    await db.pool.query(`insert into customers values (3, 'flaky', 'Cy', '+15005550009')`)
    await completedOutput(db.pool, 'sms-flaky')
    const reqs = requestsTo('+15005550009')
    assert.equal(reqs.length, 3)
    assert.ok(reqs[1]!.at - reqs[0]!.at >= 950, 'waited as long as Retry-After asked')
    assert.equal(await dlqCount(db.pool, 'sms-flaky'), 0)
  })

  test('Twilio errors 21211, 21610, 21614, 21408 and 20003 are permanent: one request each, then the DLQ', async () => {
    const phones = Object.keys(twilioErrors)
    for (const [i, phone] of phones.entries()) {
      await db.pool.query(`insert into customers values ($1, 'rejected', 'Dee', $2)`, [10 + i, phone])
    }
    for (const [i, phone] of phones.entries()) {
      const row = await dlqRow(db.pool, 'sms-rejected', String(10 + i))
      const { status, code } = twilioErrors[phone]!
      assert.equal(row.last_error_code, 'OB007')
      assert.equal(row.attempts, 1)
      assert.match(row.last_error, new RegExp(`twilio answered ${status} \\(error ${code}\\)`))
      assert.equal(requestsTo(phone).length, 1)
    }
  })

  test('a number that is not E.164 fails permanently with OB007 and nothing is sent', async () => {
    const sent = twilio.requests.length
    await db.pool.query(`insert into customers values (20, 'rejected', 'Eve', '0800 123 456')`)
    const row = await dlqRow(db.pool, 'sms-rejected', '20')
    assert.equal(row.last_error_code, 'OB007')
    assert.equal(row.attempts, 1)
    assert.match(row.last_error, /phone "0800 123 456" is not an E\.164 number/)
    assert.equal(twilio.requests.length, sent)
  })

  test('a template that fails to render goes to the DLQ as OB008', async () => {
    const sent = twilio.requests.length
    await db.pool.query(`insert into customers values (21, 'badtpl', '%zz', '+15017122662')`)
    const row = await dlqRow(db.pool, 'sms-badtpl')
    assert.equal(row.last_error_code, 'OB008')
    assert.equal(twilio.requests.length, sent)
  })

  test('the auth token never reaches logs or job rows', async () => {
    // A message Twilio accepts and one it refuses, logged with its error; both sent with the token.
    await db.pool.query(
      `insert into customers values (30, 'ok', 'Ida', '+14155550130'), (31, 'ok', 'Ned', '+15005550005')`,
    )
    await completedOutput(db.pool, 'sms-ok', '30')
    await dlqRow(db.pool, 'sms-ok', '31')
    await assertNoSecrets(
      db.pool,
      worker.logs,
      [authToken, Buffer.from(`${sid}:${authToken}`).toString('base64')],
      'sms-ok',
    )
  })
})

test('without Twilio settings the worker reports them at startup and deliveries fail with OB005', async () => {
  await withWorker(tableSql, [observer('ok')], {}, async (w, d) => {
    const expected = ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'TWILIO_FROM']
    assert.deepEqual(missingTransportWarnings(w.logs, 'sms-ok'), expected)
    await d.pool.query(`insert into customers values (1, 'ok', 'Flo', '+14155550100')`)
    const row = await dlqRow(d.pool, 'sms-ok')
    assert.equal(row.last_error_code, 'OB005')
    assert.match(row.last_error, /TWILIO_ACCOUNT_SID is not set/)
  })
})
