import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api } from './helpers.ts'

let db: TestDatabase
let worker: TestWorker

before(async () => {
  db = await createTestDatabase()
  worker = await runWorker(db.url, await observersDir({}))
})

after(async () => {
  await worker?.stop()
  await db?.drop()
})

const cursor = (text: string) => Buffer.from(text).toString('base64url')
const jobId = '00000000-0000-4000-8000-000000000000'

test('out-of-range, negative and malformed query parameters answer 400 OB015 (invalid request), never a database error', async () => {
  const bad: Array<[string, RegExp]> = [
    ['since=99999999999999d', /^since must be a time between the years 0001 and 9999/],
    ['until=99999999999999d', /^until must be a time between/],
    [`since=${'9'.repeat(400)}d`, /^since must be a time between/],
    ['since=0000-01-01', /^since must be a time between/],
    ['since=-1d', /^since must be an ISO-8601 time or an age/],
    ['since=1e3d', /^since must be an ISO-8601 time/],
    ['since=NaN', /^since must be an ISO-8601 time/],
    ['since=1', /^since must be an ISO-8601 time/],
    ['since=%2B275760-09-13T00:00:00Z', /^since must be an ISO-8601 time/],
    ['limit=0', /^limit must be an integer from 1 to 500/],
    ['limit=-1', /^limit must be an integer/],
    ['limit=1e2', /^limit must be an integer/],
    ['limit=99999999999999999999', /^limit must be an integer/],
    ['limit=NaN', /^limit must be an integer/],
    ['observer=a%00b', /^observer must be text without NUL/],
    ['entity=%00', /^entity must be text without NUL/],
    ['type=%00', /^type must be text without NUL/],
    [`cursor=${cursor(`${'9'.repeat(20)}:${jobId}`)}`, /^invalid cursor/],
  ]
  for (const [query, message] of bad) {
    const res = await api(worker.worker, `/api/dlq?${query}`)
    assert.equal(res.status, 400, query)
    assert.equal(res.body.code, 'OB015', query)
    assert.match(res.body.message, message, query)
  }
  const retry = await api(worker.worker, '/api/dlq/retry', {
    method: 'POST',
    body: { since: '99999999999999d' },
  })
  assert.equal(retry.status, 400)
  assert.equal(retry.body.code, 'OB015')

  for (const query of ['since=0001-01-01', 'until=9999-12-31T23:59:59Z', 'since=36500d', 'limit=500']) {
    const res = await api(worker.worker, `/api/dlq?${query}`)
    assert.equal(res.status, 200, query)
    assert.deepEqual(res.body.items, [], query)
  }
  const serverErrors = worker.logs.records.filter((r) => r.msg === 'ops request failed')
  assert.deepEqual(serverErrors, [], 'no request reached the database with a bad value')
})

test('an internal error answers 500 with a code and a safe message; the details go to the log', async () => {
  // A dead letter whose job data Postgres cannot cast: the DLQ listing fails in the database.
  await db.pool.query(
    `insert into pgboss.job (name, data) values ('observers.dlq', '{"action_index": "not a number"}')`,
  )
  try {
    const res = await api(worker.worker, '/api/dlq')
    assert.equal(res.status, 500)
    assert.deepEqual(res.body, { code: 'OB012', message: 'internal error; the worker log has the details' })
    const logged = worker.logs.records.find((r) => r.msg === 'ops request failed')
    assert.ok(logged, 'the failure is logged')
    assert.match(JSON.stringify(logged), /invalid input syntax for type integer/)
    assert.equal(logged.path, '/api/dlq')
  } finally {
    await db.pool.query(`delete from pgboss.job where name = 'observers.dlq'`)
  }
})
