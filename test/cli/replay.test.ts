import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { changesSettled } from '../helpers/settled.ts'
import { observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { runCli, runCliInProcess } from './helpers.ts'

let db: TestDatabase
let worker: TestWorker
let receiver: Receiver
let env: Record<string, string>
let seqs: number[]

const paths = () => receiver.requests.map((r) => r.path)
const count = (path: string) => paths().filter((p) => p === path).length

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  await db.pool.query('create table items (id int primary key)')
  const hook = (name: string) => ({
    name,
    entity: 'items',
    events: ['INSERT'],
    actions: [
      { type: 'webhook', url: `${receiver.url}/${name}`, headers: { 'x-delivery': '{{ delivery_id }}' } },
    ],
  })
  const dir = await observersDir({ 'one.json': hook('one'), 'two.json': hook('two') })
  worker = await runWorker(db.url, dir, { OBSERVERS_CONCURRENCY: '4' })
  env = { DATABASE_URL: db.url, OBSERVERS_DIR: dir }
  await db.pool.query('insert into items select g from generate_series(1, 4) g')
  await receiver.waitFor(8)
  const { rows } = await db.pool.query<{ seq: string }>('select seq from observers.change_log order by seq')
  seqs = rows.map((r) => Number(r.seq))
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

test('replay --seq re-sends a range for one observer, with the original delivery ids', async () => {
  const res = await runCli(
    ['replay', '--seq', `${seqs[1]}..${seqs[2]}`, '--observer', 'one', '--include-delivered', '--json'],
    env,
  )
  assert.equal(res.code, 0, res.output)
  const out = JSON.parse(res.stdout)
  assert.deepEqual([out.changes, out.deliveries, out.already_delivered], [2, 2, 0])
  await receiver.waitFor(10)
  await changesSettled(db.pool, 'public.items')
  assert.equal(count('/one'), 6)
  assert.equal(count('/two'), 4)
  const replayed = receiver.requests.slice(8)
  const ids = replayed.map((r) => JSON.parse(r.body).after.id).sort()
  assert.deepEqual(ids, [2, 3])
  for (const r of replayed) {
    const original = receiver.requests
      .slice(0, 8)
      .find((o) => o.path === r.path && JSON.parse(o.body).after.id === JSON.parse(r.body).after.id)
    assert.equal(r.headers['x-delivery'], original?.headers['x-delivery'])
  }
})

test('replay --since re-sends everything captured since then, through every observer', async () => {
  const res = await runCliInProcess(['replay', '--since', '1h', '--include-delivered'], env)
  assert.equal(res.code, 0, res.output)
  assert.match(res.stdout, /4 change\(s\): sent 8 delivery/)
  await receiver.waitFor(18)
  assert.equal(count('/two'), 8)
})

test('replay rejects a missing range, a bad range and an unknown observer with exit 2', async () => {
  const none = await runCli(['replay'], env)
  assert.equal(none.code, 2)
  assert.match(none.output, /--since or --seq/)
  assert.equal((await runCliInProcess(['replay', '--seq', '9..3'], env)).code, 2)
  const unknown = await runCliInProcess(['replay', '--since', '1h', '--observer', 'three'], env)
  assert.equal(unknown.code, 2)
  assert.match(unknown.output, /OB002: no valid observer named "three"/)
})
