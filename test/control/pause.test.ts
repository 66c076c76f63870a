import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { runCli } from '../cli/helpers.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api } from '../ops/helpers.ts'

let db: TestDatabase
let receiver: Receiver
let dir: string
let worker: TestWorker | undefined

const body = { id: '{{ after.id }}', n: '{{ after.n }}' }

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  await db.pool.query('create table items (id int primary key, n int not null)')
  dir = await observersDir({
    'held.json': {
      name: 'held',
      entity: 'items',
      events: ['INSERT', 'UPDATE'],
      ordering: 'entity',
      actions: [{ type: 'webhook', url: `${receiver.url}/held`, body_template: body }],
    },
    'barrier.json': {
      name: 'barrier',
      entity: 'items',
      events: ['INSERT', 'UPDATE'],
      actions: [{ type: 'webhook', url: `${receiver.url}/barrier`, body_template: body }],
    },
  })
  worker = await runWorker(db.url, dir)
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

const received = (path: string) =>
  receiver.requests.filter((r) => r.path === path).map((r) => (JSON.parse(r.body) as { n: number }).n)

/** Waits until the unpaused observer delivered its copy of the change that set n. */
const barrier = (n: number) =>
  eventually(() => received('/barrier').includes(n), 60_000, `barrier copy of n=${n}`)

test('a paused observer holds its deliveries across a restart; resume delivers them in commit order', async () => {
  const paused = await api((worker as TestWorker).worker, '/api/observers/held/pause', { method: 'POST' })
  assert.equal(paused.status, 200)
  assert.equal(paused.body.changed, true)

  await db.pool.query('insert into items values (1, 0)')
  for (let n = 1; n <= 5; n++) await db.pool.query('update items set n = $1 where id = 1', [n])
  await barrier(5)
  assert.deepEqual(received('/held'), [], 'nothing delivered while paused')

  await (worker as TestWorker).stop()
  worker = await runWorker(db.url, dir)
  const listed = await api(worker.worker, '/api/observers')
  const held = listed.body.observers.find((o: { name: string }) => o.name === 'held')
  assert.equal(held.paused, true, 'still paused after a restart')
  const metrics = await api(worker.worker, '/metrics')
  assert.match(metrics.body, /observers_paused\{target="held"\} 1/)

  await db.pool.query('update items set n = 6 where id = 1')
  await barrier(6)
  assert.deepEqual(received('/held'), [], 'nothing delivered while paused after the restart')

  // The CLI resumes through observers.resume_observer(): the worker learns it by NOTIFY.
  const cli = await runCli(['resume', 'held'], { DATABASE_URL: db.url, OBSERVERS_DIR: dir })
  assert.equal(cli.code, 0, cli.output)
  assert.match(cli.stdout, /held: resumed/)
  await eventually(() => received('/held').length >= 7, 60_000, 'every held delivery')
  assert.deepEqual(received('/held'), [0, 1, 2, 3, 4, 5, 6], 'each change once, in commit order')
  const { rows } = await db.pool.query('select count(*)::int as n from observers.paused')
  assert.equal(rows[0].n, 0)
})

test("pausing one action holds only that action; the observer's other action keeps delivering", async () => {
  await db.pool.query('create table tags (id int primary key)')
  const two = await observersDir({
    'two.json': {
      name: 'two',
      entity: 'tags',
      events: ['INSERT'],
      actions: [
        { type: 'webhook', url: `${receiver.url}/first`, body_template: { n: '{{ after.id }}' } },
        { type: 'webhook', url: `${receiver.url}/second`, body_template: { n: '{{ after.id }}' } },
      ],
    },
  })
  await (worker as TestWorker).stop()
  worker = await runWorker(db.url, two)
  const paused = await api(worker.worker, '/api/observers/two%231/pause', { method: 'POST' })
  assert.equal(paused.status, 200)
  await db.pool.query('insert into tags values (1), (2)')
  await eventually(() => received('/first').length >= 2, 60_000, 'the unpaused action')
  assert.deepEqual(received('/second'), [], 'the paused action waits')
  const listed = await api(worker.worker, '/api/observers')
  assert.deepEqual(
    listed.body.observers[0].actions.map((a: { paused: boolean }) => a.paused),
    [false, true],
  )
  await api(worker.worker, '/api/observers/two%231/resume', { method: 'POST' })
  await eventually(() => received('/second').length >= 2, 60_000, 'the resumed action')
  assert.deepEqual([...received('/second')].sort(), [1, 2])
})
