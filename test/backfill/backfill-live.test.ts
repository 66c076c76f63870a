import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { runCliInProcess } from '../cli/helpers.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { jobsFinished } from '../helpers/settled.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

// A file of its own. The backfill reads and queues 100 000 rows; the observer's condition selects
// one in ten, so 10 000 snapshots go through the ordered queue, and the rule asserted is the same
// for every row delivered. All 100 000 would not fit a test's 180 s on a loaded 2-core machine:
// an ordered backlog of 100 000 drains at 500–700 a second there (docs/performance.md), minutes
// on top of the backfill itself.

let db: TestDatabase
let receiver: Receiver
let worker: TestWorker
let env: Record<string, string>

const rows = 100_000
const watched = rows / 10

before(async () => {
  db = await createTestDatabase(
    `create table items (id int primary key, n int not null, watched boolean not null);
     insert into items select g, 0, g % 10 = 0 from generate_series(1, ${rows}) g;`,
  )
  receiver = await startReceiver()
  const dir = await observersDir({
    'mirror.json': {
      name: 'mirror',
      entity: 'items',
      events: ['INSERT', 'UPDATE'],
      ordering: 'entity',
      condition: 'watched = true',
      // Hundreds of requests in flight to a receiver in this process: on a loaded machine an
      // answer may take seconds, and a timed-out attempt sent again would be a second snapshot.
      actions: [{ type: 'webhook', url: `${receiver.url}/mirror`, timeout_ms: 60_000 }],
    },
  })
  // Enough slots that the ordered queue is drained about as fast as the backfill fills it.
  worker = await runWorker(db.url, dir, { OBSERVERS_CONCURRENCY: '256', OBSERVERS_DB_POOL_SIZE: '8' })
  env = { DATABASE_URL: db.url, OBSERVERS_DIR: dir }
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

/**
 * Waits until every change is dispatched and every job has finished: 10 000 ordered deliveries,
 * which take minutes on a loaded machine.
 */
async function allDelivered() {
  await eventually(
    async () => (await db.pool.query('select 1 from observers.change_pending limit 1')).rowCount === 0,
    300_000,
    'every change dispatched',
  )
  await jobsFinished(db.pool, 300_000)
}

test('backfill of 100 000 rows while another client updates them: nothing missed, the last state delivered is the table’s', async () => {
  let backfillDone = false
  const updater = (async () => {
    let updates = 0
    // Watched rows only, and at most a fifth as many updates as them, so a fast database does not
    // multiply the deliveries.
    while ((!backfillDone || updates < 200) && updates < watched / 5) {
      const id = 10 * (1 + Math.floor(Math.random() * watched))
      await db.pool.query('update items set n = n + 1 where id = $1', [id])
      updates++
    }
    return updates
  })()
  const res = await runCliInProcess(
    ['backfill', 'items', '--page-size', '1000', '--pause-ms', '0', '--json'],
    env,
  )
  backfillDone = true
  const updates = await updater
  assert.equal(res.code, 0, res.output)
  const state = JSON.parse(res.stdout)
  assert.deepEqual([state.state, state.rows_done, state.rows_total], ['done', rows, rows])
  await allDelivered()
  const last = new Map<number, number>()
  const snapshotted = new Set<number>()
  let snapshots = 0
  for (const r of receiver.requests) {
    const body = JSON.parse(r.body) as { snapshot?: boolean; after: { id: number; n: number } }
    if (body.snapshot) {
      snapshots++
      snapshotted.add(body.after.id)
    }
    last.set(body.after.id, body.after.n)
  }
  assert.equal(snapshotted.size, watched, 'every watched row has its snapshot: none missed')
  assert.equal(snapshots, watched, 'one snapshot per watched row')
  assert.ok(
    [...last.keys()].every((id) => id % 10 === 0),
    'rows the condition leaves out are not delivered',
  )
  const { rows: table } = await db.pool.query<{ id: number; n: number }>(
    'select id, n from items where watched order by id',
  )
  const stale = table.filter((r) => last.get(r.id) !== r.n)
  assert.deepEqual(
    stale.slice(0, 5),
    [],
    `${stale.length} row(s) last delivered stale, after ${updates} updates`,
  )
})
