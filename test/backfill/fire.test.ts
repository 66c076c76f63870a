import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { runCliInProcess } from '../cli/helpers.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api } from '../ops/helpers.ts'

let db: TestDatabase
let receiver: Receiver
let worker: TestWorker
let env: Record<string, string>

interface Body {
  event: string
  snapshot?: boolean
  entity: string
  entity_id: string
  before: unknown
  after: Record<string, unknown>
  observer: string
  delivery_id: string
}

const bodies = () => receiver.requests.map((r) => JSON.parse(r.body) as Body)

before(async () => {
  db = await createTestDatabase(
    `create table items (id int primary key, kind text not null, total numeric(30,10));
     create table pairs (a int, b text, note text, primary key (a, b));
     insert into items values (1, 'shipped', 12345678901234567890.0123456789), (2, 'new', 1);
     insert into pairs values (1, 'x', 'first'), (1, 'y', 'second');`,
  )
  receiver = await startReceiver()
  const dir = await observersDir({
    // Listens to updates only: firing delivers an INSERT snapshot all the same.
    'shipped.json': {
      name: 'shipped',
      entity: 'items',
      events: ['UPDATE'],
      condition: `kind = 'shipped'`,
      actions: [{ type: 'webhook', url: `${receiver.url}/shipped` }],
    },
    'pairs.json': {
      name: 'pairs',
      entity: 'pairs',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: `${receiver.url}/pairs` }],
    },
  })
  worker = await runWorker(db.url, dir)
  env = { DATABASE_URL: db.url, OBSERVERS_DIR: dir }
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

test('fire --row delivers the row’s current state as a snapshot INSERT, digits intact', async () => {
  // The update fires the observer itself; the snapshot comes on top of that delivery.
  await db.pool.query(`update items set total = 98765432109876543210.9876543210 where id = 1`)
  const before = (await receiver.waitFor(1, 30_000)).length
  const res = await runCliInProcess(['fire', 'shipped', '--row', '1', '--json'], env)
  assert.equal(res.code, 0, res.output)
  const out = JSON.parse(res.stdout) as { delivery_ids: string[]; entity_id: string }
  assert.equal(out.entity_id, '1')
  assert.equal(out.delivery_ids.length, 1)
  await receiver.waitFor(before + 1, 30_000)
  const sent = receiver.requests.filter((r) => r.headers['webhook-id'] === out.delivery_ids[0])
  assert.equal(sent.length, 1)
  const body = JSON.parse(sent[0]?.body ?? '') as Body
  assert.equal(body?.event, 'INSERT')
  assert.equal(body?.snapshot, true)
  assert.equal(body?.before, null)
  assert.equal(body?.entity, 'public.items')
  assert.match(sent[0]?.body ?? '', /"total":98765432109876543210\.9876543210/)
})

test('a false condition sends nothing (OB002, exit 2) unless --force', async () => {
  const before = receiver.requests.length
  const refused = await runCliInProcess(['fire', 'shipped', '--row', '2'], env)
  assert.equal(refused.code, 2, refused.output)
  assert.match(refused.output, /OB002/)
  const forced = await runCliInProcess(['fire', 'shipped', '--row', '2', '--force'], env)
  assert.equal(forced.code, 0, forced.output)
  await receiver.waitFor(before + 1, 30_000)
  assert.equal(receiver.requests.length, before + 1)
  assert.equal(bodies().at(-1)?.after.kind, 'new')
})

test('a missing row or a malformed composite key is invalid input (exit 2)', async () => {
  const missing = await runCliInProcess(['fire', 'shipped', '--row', '99'], env)
  assert.equal(missing.code, 2)
  assert.match(missing.output, /OB001: public\.items has no row with key 99/)
  const short = await runCliInProcess(['fire', 'pairs', '--row', '1'], env)
  assert.equal(short.code, 2)
  assert.match(short.output, /2-column primary key \(a, b\)/)
})

test('POST /api/observers/:name/fire takes a composite key as an array', async () => {
  const before = receiver.requests.length
  const res = await api(worker.worker, '/api/observers/pairs/fire', {
    method: 'POST',
    body: { row: [1, 'y'] },
  })
  assert.equal(res.status, 202, JSON.stringify(res.body))
  assert.equal(res.body.entity_id, '[1, "y"]')
  await receiver.waitFor(before + 1, 30_000)
  const body = bodies().at(-1)
  assert.equal(body?.after.note, 'second')
  assert.equal(body?.snapshot, true)
  const refused = await api(worker.worker, '/api/observers/shipped/fire', {
    method: 'POST',
    body: { row: 2 },
  })
  assert.equal(refused.status, 422)
  assert.equal(refused.body.code, 'OB002')
  const unknown = await api(worker.worker, '/api/observers/nobody/fire', { method: 'POST', body: { row: 1 } })
  assert.equal(unknown.status, 404)
})
