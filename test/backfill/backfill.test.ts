import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { runCliInProcess } from '../cli/helpers.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { exited, spawnCli } from '../helpers/process.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api } from '../ops/helpers.ts'

let db: TestDatabase
let worker: TestWorker
let env: Record<string, string>

const crashRows = 3_000

before(async () => {
  db = await createTestDatabase(
    `create table parts (id int primary key, kind text not null);
     insert into parts select g, case when g % 3 = 0 then 'odd' else 'even' end from generate_series(1, ${crashRows}) g;`,
  )
  const dir = await observersDir({
    'parts.json': {
      name: 'parts',
      entity: 'parts',
      events: ['INSERT'],
      actions: [{ type: 'log', message_template: 'part {{ after.id }}' }],
    },
  })
  worker = await runWorker(db.url, dir)
  env = { DATABASE_URL: db.url, OBSERVERS_DIR: dir }
})

after(async () => {
  await worker?.stop()
  await db?.drop()
})

test('a backfill killed mid-way resumes where it was: no row missed, none queued twice', async () => {
  const child = spawnCli(
    ['backfill', 'parts', '--where', `kind = 'even'`, '--page-size', '100', '--pause-ms', '300'],
    { ...env, LOG_LEVEL: 'warn' },
  )
  const partial = await eventually(
    async () => {
      const { rows: s } = await db.pool.query<{ id: string; rows_done: string }>(
        `select id, rows_done from observers.backfills where entity = 'public.parts'`,
      )
      return s[0] && Number(s[0].rows_done) >= 300 ? s[0] : undefined
    },
    60_000,
    'the backfill under way',
  )
  child.kill('SIGKILL')
  await exited(child)
  const { rows: killed } = await db.pool.query<{ state: string; rows_done: string }>(
    'select state, rows_done from observers.backfills where id = $1',
    [partial.id],
  )
  assert.equal(killed[0]?.state, 'running', 'a crash leaves no verdict behind')
  const expected = Math.ceil((crashRows * 2) / 3)
  assert.ok(Number(killed[0]?.rows_done) < expected, 'killed before the end')

  const resumed = await runCliInProcess(['backfill', '--resume', partial.id, '--json'], env)
  assert.equal(resumed.code, 0, resumed.output)
  assert.deepEqual(
    [JSON.parse(resumed.stdout).state, JSON.parse(resumed.stdout).rows_done],
    ['done', expected],
  )
  const { rows: queued } = await db.pool.query<{ n: number; distinct: number; wrong: number }>(
    `select count(*)::int as n, count(distinct data -> 'event' ->> 'entity_id')::int as distinct,
            count(*) filter (where data -> 'event' -> 'after' ->> 'kind' <> 'even')::int as wrong
       from pgboss.job where name like 'observers.log%' and data ->> 'observer' = 'parts'`,
  )
  assert.deepEqual(queued[0], { n: expected, distinct: expected, wrong: 0 })
})

test('POST /api/backfills runs one in the worker and reports its counts', async () => {
  const res = await api(worker.worker, '/api/backfills', {
    method: 'POST',
    body: { table: 'parts', where: `kind = 'odd'`, observers: ['parts'], page_size: 400, pause_ms: 0 },
  })
  assert.equal(res.status, 202, JSON.stringify(res.body))
  assert.equal(res.body.rows_total, crashRows / 3)
  const done = await eventually(
    async () => {
      const s = await api(worker.worker, `/api/backfills/${res.body.id}`)
      return s.body.state === 'done' ? s.body : undefined
    },
    60_000,
    'backfill done',
  )
  assert.equal(done.rows_done, crashRows / 3)
  const bad = await api(worker.worker, '/api/backfills', {
    method: 'POST',
    body: { table: 'parts', where: 'nope(' },
  })
  assert.equal(bad.status, 400)
  assert.equal(bad.body.code, 'OB001')
})
