import assert from 'node:assert/strict'
import net from 'node:net'
import { after, before, describe, test } from 'node:test'
import { startActionWorker, withWorker } from '../helpers/action-worker.ts'
import type { TestDatabase } from '../helpers/db.ts'
import {
  assertNoSecrets,
  completedOutput,
  dlqCount,
  dlqRow,
  missingTransportWarnings,
} from '../helpers/outcomes.ts'
import { type ReceivedMail, type SmtpServer, startSmtp } from '../helpers/smtp.ts'
import { eventually, type TestWorker } from '../helpers/worker.ts'

let db: TestDatabase
let smtp: SmtpServer
let worker: TestWorker
const password = 'sm7p-p@ss:word/secret'
const tableSql =
  'create table orders (id int primary key, kind text not null, name text, email text, status text)'

function observer(kind: string, action: Record<string, unknown> = {}) {
  return {
    name: `email-${kind}`,
    entity: 'orders',
    events: ['INSERT'],
    condition: `kind = '${kind}'`,
    actions: [
      {
        type: 'email',
        to: '{{ email }}',
        subject: 'Order {{ entity_id }} is {{ status }}',
        body_template: 'Hi {{ name }}, order {{ entity_id }} is {{ status }}.',
        ...action,
      },
    ],
    retry: { max_attempts: 3, initial_delay_ms: 200, max_delay_ms: 5000, backoff_strategy: 'exponential' },
  }
}

// The first recipient's local part scripts the reply: flaky gets 451 once, reject gets 550.
let flakyServed = 0
function script(mail: ReceivedMail): number {
  const local = mail.envelope.to[0]?.split('@')[0]
  if (local === 'flaky' && flakyServed++ === 0) return 451
  return local === 'reject' ? 550 : 250
}

describe('with SMTP_URL and SMTP_FROM set', () => {
  before(async () => {
    smtp = await startSmtp({ username: 'mailer@shop.example', password })
    smtp.reply(script)
    ;({ db, worker } = await startActionWorker(
      tableSql,
      [
        observer('ok', {
          to: '{{ email }}, "Ops, Night Shift" <ops@shop.example>',
          cc: '{{ name | downcase }}.manager@shop.example',
          bcc: 'audit@shop.example',
          subject: 'Commande {{ entity_id }} – {{ status }} ✓',
          html_template: '<p>Hi <b>{{ name | escape }}</b>, order {{ entity_id }} is {{ status }}.</p>',
        }),
        observer('from', { from: '"{{ name }}\'s Shop" <orders@brand.example>' }),
        observer('badtpl', { subject: 'Order {{ name | url_decode }}' }),
      ],
      { SMTP_URL: smtp.url, SMTP_FROM: 'Shop <noreply@shop.example>' },
    ))
  })

  after(async () => {
    await worker?.stop()
    await smtp?.close()
    await db?.drop()
  })

  test('sends over SMTP with AUTH: envelope, headers, text and html exactly as rendered', async () => {
    await db.pool.query(`insert into orders values (1, 'ok', 'Zoë', 'zoe@example.com', 'shipped')`)
    const [mail] = await smtp.waitFor(1)
    assert.deepEqual(mail!.auth, { username: 'mailer@shop.example', password })
    assert.equal(mail!.envelope.from, 'noreply@shop.example')
    assert.deepEqual(mail!.envelope.to.sort(), [
      'audit@shop.example',
      'ops@shop.example',
      'zoe@example.com',
      'zoë.manager@shop.example',
    ])
    const h = mail!.headers
    assert.equal(h.get('from'), 'Shop <noreply@shop.example>')
    assert.equal(h.get('to'), 'zoe@example.com, "Ops, Night Shift" <ops@shop.example>')
    assert.equal(h.get('cc'), 'zoë.manager@shop.example')
    assert.equal(h.has('bcc'), false, 'bcc stays out of the headers')
    assert.equal(h.get('subject'), 'Commande 1 – shipped ✓')
    assert.match(h.get('content-type') ?? '', /^multipart\/alternative/)
    assert.equal(mail!.text, 'Hi Zoë, order 1 is shipped.')
    assert.equal(mail!.html, '<p>Hi <b>Zoë</b>, order 1 is shipped.</p>')
    const output = await completedOutput(db.pool, 'email-ok')
    const { rows } = await db.pool.query(
      `select data ->> 'delivery_id' as id from pgboss.job where data ->> 'observer' = 'email-ok' limit 1`,
    )
    assert.equal(
      h.get('message-id'),
      `<${rows[0].id}@shop.example>`,
      'Message-ID is derived from delivery_id',
    )
    assert.equal(output.message_id, h.get('message-id'))
    assert.deepEqual([output.accepted, output.rejected], [4, 0])
  })

  test('"from" on the action (templated) wins over SMTP_FROM', async () => {
    await db.pool.query(`insert into orders values (2, 'from', 'Bea', 'bea@example.com', 'paid')`)
    await completedOutput(db.pool, 'email-from', '2')
    const mail = smtp.accepted.find((m) => m.envelope.to[0] === 'bea@example.com')!
    assert.equal(mail.envelope.from, 'orders@brand.example')
    assert.equal(mail.headers.get('from'), `"Bea's Shop" <orders@brand.example>`)
    assert.equal(mail.text, 'Hi Bea, order 2 is paid.')
    assert.equal(mail.html, undefined)
  })

  test('a 451 reply is transient: retried on the same Message-ID, then accepted', async () => {
    await db.pool.query(`insert into orders values (3, 'from', 'Cy', 'flaky@example.com', 'paid')`)
    await completedOutput(db.pool, 'email-from', '3')
    const tries = smtp.attempts.filter((m) => m.envelope.to[0] === 'flaky@example.com')
    assert.equal(tries.length, 2)
    assert.equal(tries[0]!.headers.get('message-id'), tries[1]!.headers.get('message-id'))
    assert.equal(await dlqCount(db.pool, 'email-from'), 0)
  })

  test('a 550 reply is permanent: one attempt, then the DLQ with the SMTP reply', async () => {
    await db.pool.query(`insert into orders values (4, 'from', 'Di', 'reject@example.com', 'paid')`)
    const row = await dlqRow(db.pool, 'email-from', '4')
    assert.equal(row.last_error_code, 'OB007')
    assert.equal(row.attempts, 1)
    assert.match(row.last_error, /SMTP 550/)
    assert.equal(smtp.attempts.filter((m) => m.envelope.to[0] === 'reject@example.com').length, 1)
  })

  test('sequential messages reuse one pooled connection', async () => {
    const before = smtp.connections()
    for (const id of [5, 6, 7]) {
      await db.pool.query(`insert into orders values ($1, 'from', 'Ed', $2, 'paid')`, [
        id,
        `ed${id}@example.com`,
      ])
      await eventually(
        () => smtp.accepted.some((m) => m.envelope.to[0] === `ed${id}@example.com`),
        10_000,
        'mail',
      )
    }
    assert.ok(
      smtp.connections() - before <= 1,
      `3 messages opened ${smtp.connections() - before} connections`,
    )
  })

  test('a template that fails to render goes to the DLQ as OB008 and nothing is sent', async () => {
    const sent = smtp.attempts.length
    await db.pool.query(`insert into orders values (8, 'badtpl', '%zz', 'fay@example.com', 'paid')`)
    const row = await dlqRow(db.pool, 'email-badtpl')
    assert.equal(row.last_error_code, 'OB008')
    assert.equal(smtp.attempts.length, sent)
  })

  test('the SMTP password never reaches logs or job rows', async () => {
    // A delivery over the authenticated connection and one the server rejects, logged with its error.
    await db.pool.query(
      `insert into orders values (90, 'ok', 'Sam', 'sam@example.com', 'paid'), (91, 'ok', 'Rex', 'reject@example.com', 'paid')`,
    )
    await completedOutput(db.pool, 'email-ok', '90')
    await dlqRow(db.pool, 'email-ok', '91')
    await assertNoSecrets(db.pool, worker.logs, [password, encodeURIComponent(password)], 'email-ok')
  })
})

const bareObservers = [observer('ok'), observer('from', { from: 'orders@brand.example' })]

test('without SMTP_URL (and SMTP_FROM) both are reported at startup and deliveries fail with OB005', async () => {
  await withWorker(tableSql, bareObservers, {}, async (w, d) => {
    assert.deepEqual(missingTransportWarnings(w.logs, 'email-ok'), ['SMTP_FROM', 'SMTP_URL'])
    assert.deepEqual(missingTransportWarnings(w.logs, 'email-from'), ['SMTP_URL'])
    await d.pool.query(`insert into orders values (1, 'ok', 'Gus', 'gus@example.com', 'new'),
                                                 (2, 'from', 'Gus', 'gus@example.com', 'new')`)
    const noFrom = await dlqRow(d.pool, 'email-ok')
    assert.equal(noFrom.last_error_code, 'OB005')
    assert.match(noFrom.last_error, /SMTP_FROM/)
    const noUrl = await dlqRow(d.pool, 'email-from')
    assert.equal(noUrl.last_error_code, 'OB005')
    assert.match(noUrl.last_error, /SMTP_URL is not set/)
  })
})

test('smtps:// speaks implicit TLS, with tls.* options taken from the URL', async () => {
  const tls = await startSmtp({ username: 'tls-user', password: 'tls-pass', secure: true })
  try {
    await withWorker(
      tableSql,
      bareObservers,
      { SMTP_URL: `${tls.url}?tls.rejectUnauthorized=false` },
      async (_w, d) => {
        await d.pool.query(`insert into orders values (1, 'from', 'Hal', 'hal@example.com', 'new')`)
        const [mail] = await tls.waitFor(1)
        assert.equal(mail!.tls, true)
        assert.equal(mail!.auth.username, 'tls-user')
        await completedOutput(d.pool, 'email-from')
      },
    )
  } finally {
    await tls.close()
  }
})

test('a refused connection is transient: retried, then OB013 once attempts run out', async () => {
  const closed = net.createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const { port } = closed.address() as net.AddressInfo
  await new Promise((resolve) => closed.close(resolve))
  await withWorker(tableSql, bareObservers, { SMTP_URL: `smtp://127.0.0.1:${port}` }, async (_w, d) => {
    await d.pool.query(`insert into orders values (1, 'from', 'Ida', 'ida@example.com', 'new')`)
    const row = await dlqRow(d.pool, 'email-from')
    assert.equal(row.last_error_code, 'OB013')
    assert.equal(row.attempts, 3)
    assert.match(row.last_error, /ECONNREFUSED|ESOCKET|ECONNECTION/)
  })
})
