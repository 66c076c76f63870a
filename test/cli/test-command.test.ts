import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { observersDir } from '../helpers/worker.ts'
import { runCli, runCliWithStdin } from './helpers.ts'

const secrets = { SHIP_AUTH: 'Bearer ship-secret-4242', SHIP_SECRET: 'whsec_c2hpcC1zaWduaW5nLXNlY3JldA==' }
let receiver: Receiver
let dir: string
let env: Record<string, string>

const shipped = {
  event: 'UPDATE',
  before: { id: 42, status: 'packed', total: 150, customer_email: 'ann@example.com' },
  after: { id: 42, status: 'shipped', total: 150, customer_email: 'ann@example.com' },
  tenant_id: 'acme',
}

before(async () => {
  receiver = await startReceiver()
  dir = await observersDir({
    'order-shipped.json': {
      name: 'order-shipped',
      entity: 'orders',
      events: ['UPDATE'],
      columns: ['status'],
      condition: "CHANGED_TO(status, 'shipped') AND total > 100",
      actions: [
        {
          type: 'webhook',
          url_env: 'SHIP_URL',
          headers: { 'X-Tenant': '{{ tenant_id }}' },
          headers_env: { Authorization: 'SHIP_AUTH' },
          body_template: {
            order: '{{ after.id }}',
            total: '{{ after.total }}',
            note: 'for {{ customer_email }}',
          },
          signing_secret_env: 'SHIP_SECRET',
        },
        { type: 'log', message_template: 'order {{ entity_id }} shipped' },
      ],
    },
  })
  await writeFile(path.join(dir, 'shipped-event.json'), JSON.stringify(shipped))
  await writeFile(path.join(dir, 'broken-event.txt'), '{ "event": ')
  env = {
    OBSERVERS_DIR: dir,
    SHIP_URL: `${receiver.url}/hook`,
    ...secrets,
    DATABASE_URL: 'postgres://unused',
  }
})

after(async () => {
  await receiver?.close()
})

test('a matching event: each check passes, the condition tree shows values, actions render masked', async () => {
  const res = await runCli(
    ['test', 'order-shipped', '--event', path.join(dir, 'shipped-event.json'), '--json'],
    env,
  )
  assert.equal(res.code, 0, res.output)
  const run = JSON.parse(res.stdout)
  assert.equal(run.fires, true)
  assert.deepEqual(
    Object.values(run.checks).map((c) => (c as { ok: boolean }).ok),
    [true, true, true, true],
  )
  assert.equal(run.event.entity, 'public.orders')
  assert.deepEqual(run.event.changed, ['status'])
  assert.equal(run.condition.value, true)
  const [changedTo, total] = run.condition.children
  assert.equal(changedTo.text, "CHANGED_TO(status, 'shipped')")
  assert.deepEqual(
    changedTo.children.map((c: { text: string; value: unknown }) => [c.text, c.value]),
    [
      ['before.status', 'packed'],
      ['after.status', 'shipped'],
    ],
  )
  assert.equal(total.text, 'total > 100')
  assert.equal(total.value, true)
  const [hook, log] = run.actions
  assert.deepEqual(hook.rendered.headers, { 'X-Tenant': 'acme' })
  assert.deepEqual(hook.rendered.body_template, { order: 42, total: 150, note: 'for ann@example.com' })
  assert.equal(hook.rendered.url_env, 'SHIP_URL = ***')
  assert.deepEqual(hook.rendered.headers_env, { Authorization: 'SHIP_AUTH = ***' })
  assert.equal(hook.rendered.signing_secret_env, 'SHIP_SECRET = ***')
  assert.equal(log.rendered.message_template, 'order 42 shipped')
  for (const value of [...Object.values(secrets), receiver.url])
    assert.equal(res.output.includes(value), false)
  assert.equal(receiver.requests.length, 0, 'nothing was sent')
})

test('a non-matching event read from stdin shows which sub-expression failed', async () => {
  const cheap = { ...shipped, after: { ...shipped.after, total: 50 } }
  const res = await runCliWithStdin(['test', 'order-shipped'], env, JSON.stringify(cheap))
  assert.equal(res.code, 0, res.output)
  assert.match(res.stdout, /FAIL {2}condition/)
  assert.match(res.stdout, /total > 100 {2}→ {2}false/)
  assert.match(res.stdout, /CHANGED_TO\(status, 'shipped'\) {2}→ {2}true/)
  assert.match(res.stdout, /does NOT fire/)
  assert.match(res.stdout, /url_env: "SHIP_URL = \*\*\*"/)
  assert.match(res.stdout, /nothing was sent/)
  assert.equal(receiver.requests.length, 0)
})

test('an unknown observer or an unreadable event exits 2', async () => {
  const unknown = await runCli(['test', 'nope', '--event', path.join(dir, 'shipped-event.json')], env)
  assert.equal(unknown.code, 2)
  assert.match(unknown.output, /OB002: no valid, enabled observer named "nope"/)
  const broken = await runCli(['test', 'order-shipped', '--event', path.join(dir, 'broken-event.txt')], env)
  assert.equal(broken.code, 2)
  assert.match(broken.output, /not valid JSON/)
})
