import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { runCliInProcess } from '../cli/helpers.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { jobsFinished } from '../helpers/settled.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

let db: TestDatabase
let receiver: Receiver
let worker: TestWorker
let env: Record<string, string>

const rows = 200

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
  worker = await runWorker(db.url, dir)
  env = { DATABASE_URL: db.url, OBSERVERS_DIR: dir }
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

test('a row updated while its page is being read is not overtaken by its stale snapshot', async () => {
  // One slow page: each row read takes 10 ms, so the update below lands while the page is open.
  const backfill = runCliInProcess(
    ['backfill', 'items', '--where', 'pg_sleep(0.01) is not null', '--page-size', String(rows), '--json'],
    env,
  )
  await eventually(
    async () => {
      const { rows: active } = await db.pool.query(
        `select 1 from pg_stat_activity
          where state = 'active' and query like '%to_jsonb(t)%' and now() - query_start > interval '300 ms'`,
      )
      return active.length > 0
    },
    30_000,
    'the backfill reading its page',
  )
  await db.pool.query('update items set n = 1 where id = 1')
  const res = await backfill
  assert.equal(res.code, 0, res.output)
  await eventually(
    async () => (await db.pool.query('select 1 from observers.change_pending limit 1')).rowCount === 0,
    60_000,
    'every change dispatched',
  )
  await jobsFinished(db.pool, 120_000)
  const states = receiver.requests
    .map((r) => JSON.parse(r.body) as { snapshot?: boolean; after: { id: number; n: number } })
    .filter((b) => b.after.id === 1)
    .map((b) => `${b.snapshot ? 'snapshot' : 'change'} n=${b.after.n}`)
  assert.equal(states.at(-1)?.endsWith('n=1'), true, `row 1 received, in order: ${states.join(', ')}`)
})

test('--where is one condition: it cannot end the statement and run another', async () => {
  const res = await runCliInProcess(
    ['backfill', 'items', '--where', 'true); drop table items; select (1'],
    env,
  )
  assert.equal(res.code, 2, res.output)
  assert.match(res.output, /OB001: --where does not apply to public\.items/)
  const { rows: left } = await db.pool.query<{ n: number }>('select count(*)::int as n from items')
  assert.equal(left[0]?.n, rows)
})
