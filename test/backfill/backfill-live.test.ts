import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { runCliInProcess } from '../cli/helpers.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { jobsFinished } from '../helpers/settled.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

// A file of its own: 10 000 deliveries through an ordered queue take most of a file's time
// budget on a loaded machine.

let db: TestDatabase
let receiver: Receiver
let worker: TestWorker
let env: Record<string, string>

const rows = 10_000

before(async () => {
  db = await createTestDatabase(
    `create table items (id int primary key, n int not null);
     insert into items select g, 0 from generate_series(1, ${rows}) g;`,
  )
  receiver = await startReceiver()
  const dir = await observersDir({
    'mirror.json': {
      name: 'mirror',
      entity: 'items',
      events: ['INSERT', 'UPDATE'],
      ordering: 'entity',
      actions: [{ type: 'webhook', url: `${receiver.url}/mirror` }],
    },
  })
  worker = await runWorker(db.url, dir, { OBSERVERS_CONCURRENCY: '32' })
  env = { DATABASE_URL: db.url, OBSERVERS_DIR: dir }
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

/** Waits until every change is dispatched and every job has finished. */
async function allDelivered() {
  await eventually(
    async () => (await db.pool.query('select 1 from observers.change_pending limit 1')).rowCount === 0,
    120_000,
    'every change dispatched',
  )
  await jobsFinished(db.pool, 160_000)
}

test('backfill of 10 000 rows while another client updates them: the last state delivered is the table’s', async () => {
  let backfillDone = false
  const updater = (async () => {
    let updates = 0
    while (!backfillDone || updates < 200) {
      const id = 1 + Math.floor(Math.random() * rows)
      await db.pool.query('update items set n = n + 1 where id = $1', [id])
      updates++
    }
    return updates
  })()
  const res = await runCliInProcess(
    ['backfill', 'items', '--page-size', '250', '--pause-ms', '0', '--json'],
    env,
  )
  backfillDone = true
  const updates = await updater
  assert.equal(res.code, 0, res.output)
  const state = JSON.parse(res.stdout)
  assert.deepEqual([state.state, state.rows_done, state.rows_total], ['done', rows, rows])
  await allDelivered()
  const last = new Map<number, number>()
  let snapshots = 0
  for (const r of receiver.requests) {
    const body = JSON.parse(r.body) as { snapshot?: boolean; after: { id: number; n: number } }
    if (body.snapshot) snapshots++
    last.set(body.after.id, body.after.n)
  }
  assert.equal(snapshots, rows, 'one snapshot per row')
  const { rows: table } = await db.pool.query<{ id: number; n: number }>(
    'select id, n from items order by id',
  )
  const stale = table.filter((r) => last.get(r.id) !== r.n)
  assert.deepEqual(
    stale.slice(0, 5),
    [],
    `${stale.length} row(s) last delivered stale, after ${updates} updates`,
  )
})
