import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import type { TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { observersDir, startWorkerWithDatabase, type TestWorker } from '../helpers/worker.ts'
import { deadLetters, hookObserver } from '../ops/helpers.ts'
import { runCli, runCliInProcess as runInProcess } from './helpers.ts'

let db: TestDatabase
let worker: TestWorker
let receiver: Receiver
let env: Record<string, string>

before(async () => {
  receiver = await startReceiver()
  receiver.reply([{ status: 503, body: 'receiver is down' }])
  const dir = await observersDir({
    'alpha.json': hookObserver('alpha', 'orders', `${receiver.url}/alpha`, { condition: `kind = 'a'` }),
    'beta.json': hookObserver('beta', 'orders', `${receiver.url}/beta`, { condition: `kind = 'b'` }),
  })
  ;({ db, worker } = await startWorkerWithDatabase(
    'create table orders (id int primary key, kind text)',
    dir,
    {
      OBSERVERS_CONCURRENCY: '4',
    },
  ))
  env = { DATABASE_URL: db.url, OBSERVERS_DIR: dir }
  await db.pool.query(`insert into orders values (1, 'a'), (2, 'a'), (3, 'b')`)
  await deadLetters(db.pool, 'alpha', 2)
  await deadLetters(db.pool, 'beta', 1)
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

test('dlq list shows what failed and why, as a table or as JSON, with no cursor on the last page', async () => {
  // Pages that end exactly at the last row: nothing more to offer.
  const json = await runCli(['dlq', 'list', '--since', '1h', '--limit', '3', '--json'], env)
  assert.equal(json.code, 0, json.output)
  const { items, next_cursor } = JSON.parse(json.stdout)
  assert.equal(items.length, 3)
  assert.equal(next_cursor, null)
  assert.ok(items.every((i: { last_error: string }) => /503: receiver is down/.test(i.last_error)))
  const table = await runInProcess(['dlq', 'list', '--observer', 'alpha', '--limit', '2'], env)
  assert.equal(table.code, 0, table.output)
  assert.match(table.stdout, /last error/)
  assert.match(table.stdout, /receiver is down/)
  assert.doesNotMatch(table.stdout, /beta/)
  assert.match(table.stdout, /2 dead letter\(s\)\n$/)
})

test('dlq show prints one dead letter with its attempts', async () => {
  const [id] = await deadLetters(db.pool, 'beta')
  // Both spawned: the process's exit code, 0 and 2, is what scripts read.
  const [res, missing] = await Promise.all([
    runCli(['dlq', 'show', id!, '--json'], env),
    runCli(['dlq', 'show', randomUUID()], env),
  ])
  assert.equal(res.code, 0, res.output)
  const item = JSON.parse(res.stdout)
  assert.equal(item.observer, 'beta')
  assert.equal(item.delivery.event.after.id, 3)
  assert.equal(item.attempt_history[0].status, 503)
  assert.equal(missing.code, 2)
  assert.match(missing.output, /OB001: no dead letter with id [0-9a-f-]{36}/)
  assert.doesNotMatch(missing.output, /OB012/)
  assert.equal((await runInProcess(['dlq', 'show', 'nope'], env)).code, 2)
})

test('dlq show prints the row images; dlq list fits 120 columns and keeps ids whole', async () => {
  const [id] = await deadLetters(db.pool, 'beta')
  const show = await runInProcess(['dlq', 'show', id!], env)
  assert.equal(show.code, 0, show.output)
  assert.match(show.stdout, /^before: \(none\)$/m)
  assert.match(show.stdout, /^after: \{"id":3,"kind":"b"\}$/m)
  const list = await runInProcess(['dlq', 'list'], env)
  assert.equal(list.code, 0, list.output)
  const lines = list.stdout.trimEnd().split('\n')
  const wide = lines.filter((l) => l.length > 120)
  assert.deepEqual(wide, [], 'every line within 120 columns')
  assert.match(list.stdout, /last error: OB013/)
  assert.ok(
    lines.some((l) => l.includes(id!)),
    'ids stay whole, to copy into dlq show',
  )
})

test('dlq retry by id and by filter delivers to the receiver that came back', async () => {
  receiver.reply([{ status: 200 }])
  const [first] = await deadLetters(db.pool, 'alpha', 2)
  const one = await runCli(['dlq', 'retry', first!], env)
  assert.equal(one.code, 0, one.output)
  assert.match(one.stdout, /retried 1 dead letter/)
  await receiver.waitFor(4)
  const rest = await runInProcess(['dlq', 'retry', '--observer', 'alpha', '--json'], env)
  assert.equal(JSON.parse(rest.stdout).retried, 1)
  const reqs = await receiver.waitFor(5)
  assert.deepEqual(
    reqs
      .slice(3)
      .map((r) => r.path)
      .sort(),
    ['/alpha', '/alpha'],
  )
  const { rows } = await db.pool.query(`select observer from observers.dlq`)
  assert.deepEqual(
    rows.map((r) => r.observer),
    ['beta'],
  )
})

test('bulk operations without a selection need explicit consent (exit 2)', async () => {
  const retry = await runInProcess(['dlq', 'retry'], env)
  assert.equal(retry.code, 2)
  assert.match(retry.output, /needs ids, a filter, or --all/)
  const purge = await runCli(['dlq', 'purge'], env)
  assert.equal(purge.code, 2)
  assert.match(purge.output, /--yes/)
  assert.equal((await runInProcess(['dlq', 'list', '--since', 'last tuesday'], env)).code, 2)
  assert.equal((await runInProcess(['dlq', 'list', '--bogus'], env)).code, 2)
})

test('dlq purge with a filter deletes for good, after --dry-run counted it', async () => {
  const left = async (observer: string) => {
    const { rows } = await db.pool.query<{ n: number }>(
      'select count(*)::int as n from observers.dlq where observer = $1',
      [observer],
    )
    return rows[0]!.n
  }
  const alpha = await left('alpha')
  const other = await runInProcess(['dlq', 'purge', '--observer', 'beta', '--code', 'OB999', '--json'], env)
  assert.deepEqual(JSON.parse(other.stdout), { deleted: 0 }, 'another error code selects nothing')
  const count = await runInProcess(['dlq', 'purge', '--observer', 'beta', '--dry-run', '--json'], env)
  assert.equal(count.code, 0, count.output)
  assert.deepEqual(JSON.parse(count.stdout), { matched: 1 })
  const res = await runInProcess(['dlq', 'purge', '--observer', 'beta', '--json'], env)
  assert.equal(res.code, 0, res.output)
  assert.deepEqual(JSON.parse(res.stdout), { deleted: 1 })
  assert.equal(await left('beta'), 0)
  assert.equal(await left('alpha'), alpha, 'the filter spared the other observer')
})
