import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { kindObserver, startActionWorker } from '../helpers/action-worker.ts'
import type { TestDatabase } from '../helpers/db.ts'
import { completedOutput, dlqRow } from '../helpers/outcomes.ts'
import { type SmtpServer, startSmtp } from '../helpers/smtp.ts'
import { eventually, type TestWorker } from '../helpers/worker.ts'

let db: TestDatabase
let smtp: SmtpServer
let worker: TestWorker
const tableSql = 'create table orders (id serial primary key, kind text not null, email text)'

function mailer(name: string, action: Record<string, unknown>) {
  return kindObserver('orders', name, {
    type: 'email',
    to: '{{ email }}',
    subject: 'Order {{ entity_id }}',
    body_template: 'Hello',
    ...action,
  })
}

// busy@ is refused once with 451, gone@ always with 550; everyone else is accepted.
let busyRefusals = 0
function refuse(address: string): number | undefined {
  if (address === 'gone@example.com') return 550
  if (address === 'busy@example.com' && busyRefusals++ === 0) return 451
  return undefined
}

before(async () => {
  smtp = await startSmtp({ username: 'mailer', password: 'smtp-password-1' })
  smtp.refuseRecipients(refuse)
  ;({ db, worker } = await startActionWorker(
    tableSql,
    [
      mailer('inject', {}),
      mailer('fixed', {
        to: ['{{ email }}', '"Ops, Night Shift" <ops@shop.example>'],
        cc: 'lead@shop.example, audit@shop.example',
        bcc: ['{% if email contains "vip" %}vip-desk@shop.example{% endif %}'],
      }),
      mailer('partial', { bcc: 'audit@shop.example' }),
    ],
    { SMTP_URL: smtp.url, SMTP_FROM: 'Shop <noreply@shop.example>' },
  ))
})

after(async () => {
  await worker?.stop()
  await smtp?.close()
  await db?.drop()
})

async function insert(kind: string, email: string): Promise<string> {
  const { rows } = await db.pool.query<{ id: number }>(
    'insert into orders (kind, email) values ($1, $2) returning id',
    [kind, email],
  )
  return String(rows[0]?.id)
}

test('a row value in an address field is one address: a list or separator is OB008, nothing sent', async () => {
  const hostile = [
    'a@b.example;c@evil.example',
    'victim@x.example, attacker@evil.example',
    'victim@x.example\r\nBcc: attacker@evil.example',
    'team: a@x.example, b@evil.example;',
    'not an address',
  ]
  const ids = []
  for (const email of hostile) ids.push(await insert('inject', email))
  for (const [i, id] of ids.entries()) {
    const row = await dlqRow(db.pool, 'inject', id)
    assert.equal(row.last_error_code, 'OB008', `${hostile[i]}: ${row.last_error}`)
    assert.equal(row.attempts, 1, 'permanent: not retried')
  }
  const ok = await insert('inject', 'Zoë <zoe@example.com>')
  await completedOutput(db.pool, 'inject', ok)
  const recipients = smtp.attempts.flatMap((m) => m.envelope.to)
  assert.deepEqual(recipients, ['zoe@example.com'], 'only the single address was ever mailed')
})

test('fixed addresses still make a list: a JSON array, or a comma list with no value in it', async () => {
  const id = await insert('fixed', 'vip@example.com')
  await completedOutput(db.pool, 'fixed', id)
  const mail = smtp.accepted.find((m) => m.envelope.to.includes('vip@example.com'))
  assert.ok(mail)
  assert.deepEqual(mail.envelope.to.sort(), [
    'audit@shop.example',
    'lead@shop.example',
    'ops@shop.example',
    'vip-desk@shop.example',
    'vip@example.com',
  ])
  assert.equal(mail.headers.get('to'), 'vip@example.com, "Ops, Night Shift" <ops@shop.example>')
  const { rows } = await db.pool.query(
    `select data ->> 'delivery_id' as id from pgboss.job where data ->> 'observer' = 'fixed' limit 1`,
  )
  assert.equal(mail.headers.get('x-observers-delivery-id'), rows[0].id, 'the delivery_id travels as a header')
})

test('"to" refused with 550 while the bcc is accepted: a permanent failure naming the recipient', async () => {
  const id = await insert('partial', 'gone@example.com')
  const row = await dlqRow(db.pool, 'partial', id)
  assert.equal(row.last_error_code, 'OB007', row.last_error)
  assert.equal(row.attempts, 1)
  assert.match(row.last_error, /gone@example\.com \(550\)/)
})

test('"to" refused with 451 while the bcc is accepted: retried until the recipient is accepted', async () => {
  const id = await insert('partial', 'busy@example.com')
  const output = await completedOutput(db.pool, 'partial', id)
  const tries = await eventually(() => {
    const got = smtp.attempts.filter(
      (m) => m.envelope.to.includes('audit@shop.example') && m.raw.includes(`Order ${id}`),
    )
    return got.length >= 2 ? got : undefined
  })
  assert.deepEqual(
    tries.map((m) => m.envelope.to.sort()),
    [['audit@shop.example'], ['audit@shop.example', 'busy@example.com']],
    'the second attempt reached the primary recipient',
  )
  assert.equal(output.rejected, 0)
})
