import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { changesSettled } from '../helpers/settled.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

let db: TestDatabase
const receivers: Record<string, Receiver> = {}
let worker: TestWorker

const names = ['flaky', 'gone', 'limited', 'down', 'quiet'] as const

before(async () => {
  db = await createTestDatabase()
  await db.pool.query('create table items (id int primary key, kind text not null)')
  const files: Record<string, unknown> = {}
  for (const name of names) {
    receivers[name] = await startReceiver()
    files[`${name}.json`] = {
      name,
      entity: 'items',
      events: ['INSERT'],
      condition: `kind = '${name}'`,
      actions: [{ type: 'webhook', url: `${receivers[name].url}/` }],
      retry: { max_attempts: 3, initial_delay_ms: 200, max_delay_ms: 5000, backoff_strategy: 'exponential' },
      ...(name === 'quiet' ? { on_failure: 'log' } : {}),
    }
  }
  receivers.flaky!.reply([{ status: 500 }, { status: 503 }, { status: 200 }])
  receivers.gone!.reply([{ status: 404, body: 'no such hook' }])
  receivers.limited!.reply([{ status: 429, headers: { 'retry-after': '1' } }, { status: 200 }])
  receivers.down!.reply([{ status: 502, body: 'bad gateway' }])
  receivers.quiet!.reply([{ status: 400, body: 'rejected' }])
  worker = await runWorker(db.url, await observersDir(files))
})

after(async () => {
  await worker?.stop()
  for (const r of Object.values(receivers)) await r.close()
  await db?.drop()
})

async function dlqRow(observer: string) {
  return eventually(
    async () => {
      const { rows } = await db.pool.query('select * from observers.dlq where observer = $1', [observer])
      return rows[0]
    },
    15_000,
    `DLQ row for ${observer}`,
  )
}

test('500 then 503 then 200: delivered on attempt 3 after the exponential delays', async () => {
  await db.pool.query(`insert into items values (1, 'flaky')`)
  const reqs = await receivers.flaky!.waitFor(3, 15_000)
  const gap1 = reqs[1]!.at - reqs[0]!.at
  const gap2 = reqs[2]!.at - reqs[1]!.at
  // Lower bounds only: a loaded machine may add any delay, never remove one.
  assert.ok(gap1 >= 190, `first retry after at least 200 ms, was ${gap1}`)
  assert.ok(gap2 >= 390, `second retry after at least 400 ms, was ${gap2}`)
  assert.equal(new Set(reqs.map((r) => r.headers['user-agent'])).size, 1)
  await changesSettled(db.pool, 'public.items', 1)
  assert.equal(receivers.flaky!.requests.length, 3)
  const { rows } = await db.pool.query(
    `select count(*)::int as n from observers.dlq where observer = 'flaky'`,
  )
  assert.equal(rows[0].n, 0)
})

test('404 goes to the DLQ at once with the status and body excerpt', async () => {
  await db.pool.query(`insert into items values (2, 'gone')`)
  const row = await dlqRow('gone')
  assert.equal(receivers.gone!.requests.length, 1, 'a permanent error is not retried')
  assert.equal(row.attempts, 1)
  assert.equal(row.last_error_code, 'OB007')
  assert.match(row.last_error, /404/)
  assert.match(row.last_error, /no such hook/)
  assert.equal(row.entity, 'public.items')
  assert.equal(row.entity_id, '2')
  assert.equal(row.action_type, 'webhook')
})

test('429 with Retry-After waits as long as the server asks', async () => {
  await db.pool.query(`insert into items values (3, 'limited')`)
  const reqs = await receivers.limited!.waitFor(2, 15_000)
  const gap = reqs[1]!.at - reqs[0]!.at
  assert.ok(gap >= 950, `Retry-After: 1 honoured, waited ${gap} ms`)
})

test('a transient error that never clears ends in the DLQ with every attempt recorded', async () => {
  await db.pool.query(`insert into items values (4, 'down')`)
  const row = await dlqRow('down')
  assert.equal(receivers.down!.requests.length, 3)
  assert.equal(row.attempts, 3)
  assert.equal(row.last_error_code, 'OB013')
  assert.match(row.last_error, /bad gateway/)
  const { rows } = await db.pool.query(`select data from pgboss.job where id = $1`, [row.id])
  const attempts = rows[0].data.attempts as Array<{ attempt: number; status: number; at: string }>
  assert.deepEqual(
    attempts.map((a) => a.attempt),
    [1, 2, 3],
  )
  assert.deepEqual(
    attempts.map((a) => a.status),
    [502, 502, 502],
  )
})

test('on_failure "log" logs the failure and keeps it out of the DLQ', async () => {
  await db.pool.query(`insert into items values (5, 'quiet')`)
  await eventually(
    async () => {
      const { rows } = await db.pool.query(`select * from observers.retry_exhausted where observer = 'quiet'`)
      return rows[0]
    },
    15_000,
    'failed job',
  )
  const { rows } = await db.pool.query(
    `select count(*)::int as n from observers.dlq where observer = 'quiet'`,
  )
  assert.equal(rows[0].n, 0)
  const line = worker.logs.records.find((r) => r.observer === 'quiet' && r.outcome === 'failed')
  assert.ok(line, 'one failure line')
  assert.equal(line.code, 'OB007')
  assert.equal(line.delivery_id !== undefined, true)
})
