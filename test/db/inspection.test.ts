import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { actionTypes } from '../../src/actions/registry.ts'
import { runCli } from '../cli/helpers.ts'
import type { TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, startWorkerWithDatabase, type TestWorker } from '../helpers/worker.ts'
import { deadLetters, hookObserver } from '../ops/helpers.ts'

let db: TestDatabase
let worker: TestWorker
let receiver: Receiver
let env: Record<string, string>

const rowsOf = (path: string) =>
  receiver.requests.filter((r) => r.path === path).map((r) => JSON.parse(r.body).entity_id as string)

before(async () => {
  receiver = await startReceiver()
  // Each path fails until its flag is set: a receiver that is down, then fixed.
  receiver.reply((r) => (fixed.has(r.path) ? { status: 200 } : { status: 503, body: 'down' }))
  const hook = (name: string, extra: Record<string, unknown> = {}) =>
    hookObserver(name, 'items', `${receiver.url}/${name}`, {
      condition: `kind = '${name}'`,
      retry: { max_attempts: 2, initial_delay_ms: 50 },
      ...extra,
    })
  const dir = await observersDir({
    'once.json': hook('once'),
    'bulk.json': hook('bulk'),
    'inorder.json': hook('inorder', { ordering: 'entity', events: ['INSERT', 'DELETE'] }),
    'api.json': hook('api'),
  })
  ;({ db, worker } = await startWorkerWithDatabase(
    'create table items (id int primary key, kind text not null)',
    dir,
    { OBSERVERS_CONCURRENCY: '4' },
  ))
  env = { DATABASE_URL: db.url, OBSERVERS_DIR: dir }
})

const fixed = new Set<string>()

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

test('recent_failures lists each attempt of a dead letter once', async () => {
  await db.pool.query(`insert into items values (1, 'once')`)
  await deadLetters(db.pool, 'once')
  const { rows } = await db.pool.query<{ attempt: number; code: string; queue: string }>(
    `select attempt, code, queue from observers.recent_failures where observer = 'once' order by attempt`,
  )
  assert.deepEqual(
    rows.map((r) => [r.attempt, r.code]),
    [
      [1, 'OB006'],
      [2, 'OB013'],
    ],
  )
})

test('select observers.retry_dead_letter(id) re-delivers a dead letter once, through the running worker', async () => {
  const [id] = await deadLetters(db.pool, 'once')
  fixed.add('/once')
  const { rows } = await db.pool.query<{ ok: boolean }>('select observers.retry_dead_letter($1) as ok', [id])
  assert.equal(rows[0]?.ok, true)
  await eventually(() => rowsOf('/once').length === 3, 30_000, 'the retried delivery')
  const { rows: dead } = await db.pool.query(`select id from observers.dlq where observer = 'once'`)
  assert.deepEqual(dead, [])
  const again = await db.pool.query<{ ok: boolean }>('select observers.retry_dead_letter($1) as ok', [id])
  assert.equal(again.rows[0]?.ok, false, 'a dead letter already retried is not found again')
  await eventually(async () => {
    const { rows: done } = await db.pool.query(
      `select 1 from pgboss.job where name = 'observers.webhook' and state = 'completed'
          and data ->> 'observer' = 'once'`,
    )
    return done.length === 1
  })
  assert.deepEqual(rowsOf('/once'), ['1', '1', '1'])
})

test('a delivery retried successfully leaves retry_exhausted and the failed count of status', async () => {
  const { rows } = await db.pool.query(`select observer from observers.retry_exhausted`)
  assert.deepEqual(rows, [])
  const res = await runCli(['status', '--json'], env)
  assert.equal(res.code, 0, res.output)
  const webhook = JSON.parse(res.stdout).queues.find(
    (q: { queue: string }) => q.queue === 'observers.webhook',
  )
  assert.equal(webhook.failed, 0)
})

test('observers.retry_dead_letters retries what its filters select and returns the count', async () => {
  await db.pool.query(`insert into items values (10, 'bulk'), (11, 'bulk'), (12, 'api')`)
  await deadLetters(db.pool, 'bulk', 2)
  await deadLetters(db.pool, 'api', 1)
  const { rows: exhausted } = await db.pool.query<{ observer: string; n: number }>(
    `select observer, count(*)::int as n from observers.retry_exhausted group by 1 order by 1`,
  )
  assert.deepEqual(exhausted, [
    { observer: 'api', n: 1 },
    { observer: 'bulk', n: 2 },
  ])
  fixed.add('/bulk')
  const { rows } = await db.pool.query<{ n: number }>(
    `select observers.retry_dead_letters(observer => 'bulk', since => '1 hour') as n`,
  )
  assert.equal(rows[0]?.n, 2)
  await eventually(() => rowsOf('/bulk').length === 6, 30_000, 'both retried deliveries')
  const { rows: left } = await db.pool.query(`select observer from observers.dlq`)
  assert.deepEqual(left, [{ observer: 'api' }])
})

test('a retried dead letter of an ordered row runs, then the row changes waiting behind it', async () => {
  await db.pool.query(`insert into items values (20, 'inorder')`)
  const [id] = await deadLetters(db.pool, 'inorder')
  await db.pool.query(`delete from items where id = 20`)
  await eventually(
    async () => {
      const { rows } = await db.pool.query(
        `select 1 from pgboss.job where name = 'observers.webhook.ordered' and state = 'created'`,
      )
      return rows.length === 1
    },
    20_000,
    'the delete queued behind the failed insert',
  )
  fixed.add('/inorder')
  const { rows } = await db.pool.query<{ ok: boolean }>('select observers.retry_dead_letter($1) as ok', [id])
  assert.equal(rows[0]?.ok, true)
  await eventually(() => rowsOf('/inorder').length === 4, 30_000, 'the retried delivery and the next')
  const events = receiver.requests.filter((r) => r.path === '/inorder').map((r) => JSON.parse(r.body).event)
  assert.deepEqual(events, ['INSERT', 'INSERT', 'INSERT', 'DELETE'])
})

test('the default timeouts in SQL are those of the action types', async () => {
  for (const [type, action] of actionTypes) {
    const { rows } = await db.pool.query<{ ms: number }>('select observers.default_timeout_ms($1) as ms', [
      type,
    ])
    assert.equal(rows[0]?.ms, action.defaultTimeoutMs, type)
  }
})
