import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { changesSettled } from '../helpers/settled.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

let db: TestDatabase
let receiver: Receiver
let worker: TestWorker
const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  await db.pool.query(`create table orders (
    id bigint primary key, status text not null, total numeric(30,10) not null, note text)`)
  const dir = await observersDir({
    'orders-all.json': {
      name: 'orders-all',
      entity: 'orders',
      events: ['insert', 'UPDATE', 'deleted'],
      actions: [
        {
          type: 'webhook',
          url: `${receiver.url}/hooks/{{ entity_id }}`,
          headers: { 'X-Event': '{{ event }}', 'X-Status': '{{ status }}' },
          signing_secret_env: 'TEST_WEBHOOK_SECRET',
        },
      ],
    },
    'orders-status.json': {
      name: 'orders-status',
      entity: 'public.orders',
      events: ['UPDATE'],
      columns: ['status'],
      actions: [
        {
          type: 'webhook',
          url: `${receiver.url}/status`,
          body_template: { id: '{{ after.id }}', total: '{{ after.total }}', text: 'now {{ status }}' },
        },
      ],
    },
  })
  worker = await runWorker(db.url, dir, { TEST_WEBHOOK_SECRET: secret })
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

function verify(body: string, headers: Record<string, unknown>): boolean {
  const key = Buffer.from(secret.slice(6), 'base64')
  const signed = `${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`
  const expected = `v1,${createHmac('sha256', key).update(signed).digest('base64')}`
  return String(headers['webhook-signature']).split(' ').includes(expected)
}

test('insert, update and delete each deliver exactly once, signed, with the event as body', async () => {
  await db.pool.query(`insert into orders values (9007199254740993, 'new', 12.5000000000, null)`)
  await db.pool.query(`update orders set note = 'gift' where id = 9007199254740993`)
  await db.pool.query(`delete from orders where id = 9007199254740993`)
  const reqs = await receiver.waitFor(3)
  await changesSettled(db.pool, 'public.orders', '9007199254740993')
  const hooks = receiver.requests.filter((r) => r.path.startsWith('/hooks/'))
  assert.equal(hooks.length, 3)
  const byEvent = new Map(hooks.map((r) => [r.headers['x-event'], r]))
  assert.deepEqual([...byEvent.keys()].sort(), ['DELETE', 'INSERT', 'UPDATE'])
  const ins = byEvent.get('INSERT')!
  assert.equal(ins.path, '/hooks/9007199254740993')
  assert.match(ins.body, /"id":9007199254740993/)
  assert.match(ins.body, /"total":12\.5000000000/)
  assert.equal(ins.headers['x-status'], 'new')
  assert.ok(verify(ins.body, ins.headers), 'signature verifies with the secret')
  const upd = JSON.parse(byEvent.get('UPDATE')!.body)
  assert.deepEqual(upd.changed, ['note'])
  assert.equal(upd.before.note, null)
  assert.equal(upd.after.note, 'gift')
  const del = JSON.parse(byEvent.get('DELETE')!.body)
  assert.equal(del.after, null)
  assert.equal(del.before.status, 'new')
  assert.equal(new Set(hooks.map((r) => r.headers['webhook-id'])).size, 3)
  assert.ok(
    reqs.every((r) => r.path !== '/status'),
    'columns filter: status did not change',
  )
})

test('columns filter and typed JSON template leaves', async () => {
  receiver.requests.length = 0
  await db.pool.query(`insert into orders values (7, 'new', 100.25, null)`)
  await db.pool.query(`update orders set status = 'shipped' where id = 7`)
  await eventually(() => receiver.requests.some((r) => r.path === '/status'), 10_000, 'status webhook')
  const status = receiver.requests.find((r) => r.path === '/status')!
  assert.equal(status.body, '{"id":7,"total":100.2500000000,"text":"now shipped"}')
  assert.equal(status.headers['content-type'], 'application/json')
})

test('an update that changes nothing fires nothing', async () => {
  await db.pool.query(`insert into orders values (8, 'new', 1, null)`)
  await eventually(() => receiver.requests.some((r) => r.path === '/hooks/8'), 10_000, 'insert webhook')
  const before = receiver.requests.length
  await db.pool.query(`update orders set status = status where id = 8`)
  await db.pool.query(`insert into orders values (9, 'new', 1, null)`)
  await eventually(() => receiver.requests.some((r) => r.path === '/hooks/9'), 10_000, 'marker webhook')
  await changesSettled(db.pool, 'public.orders', 8)
  assert.equal(receiver.requests.length, before + 1)
  const { rows } = await db.pool.query(
    `select count(*)::int as n from observers.change_log where entity_id = '8'`,
  )
  assert.equal(rows[0].n, 1, 'no change-log row for the no-op update')
})

test('credentials in a webhook URL are sent as Basic auth, never in the URL', async () => {
  const { moveUrlCredentials } = await import('../../src/actions/http.ts')
  const headers: Record<string, string> = {}
  const url = moveUrlCredentials('https://ann:p%40ss@hooks.example.com/x?y=1', headers)
  assert.equal(url, 'https://hooks.example.com/x?y=1')
  assert.equal(headers.authorization, `Basic ${Buffer.from('ann:p@ss').toString('base64')}`)
  const kept = { Authorization: 'Bearer t' }
  moveUrlCredentials('https://ann:pw@hooks.example.com/', kept)
  assert.deepEqual(kept, { Authorization: 'Bearer t' })
})

test('a condition field no column has is warned about once, with its observer and file', async () => {
  const dir = await observersDir({
    'typo.json': {
      name: 'typo',
      entity: 'orders',
      events: ['UPDATE'],
      condition: "stauts = 'shipped' AND total > 1",
      actions: [{ type: 'log' }],
    },
  })
  const other = await runWorker(db.url, dir, { PORT: '0' })
  await other.stop()
  const warnings = other.logs.records.filter((r) => r.observer === 'typo' && r.field !== undefined)
  assert.deepEqual(
    warnings.map((r) => [r.code, r.field]),
    [['OB003', 'stauts']],
  )
})
