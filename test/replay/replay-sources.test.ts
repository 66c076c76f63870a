import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import mysql from 'mysql2/promise'
import { runCliInProcess } from '../cli/helpers.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { startReceiver } from '../helpers/receiver.ts'
import { hostPort, skipUnlessReachable } from '../helpers/services.ts'
import { eventually, observersDir, runWorker } from '../helpers/worker.ts'
import { api } from '../ops/helpers.ts'
import { createFraiseqlChangeLog, insertFraiseqlChange } from '../sources/fraiseql-schema.ts'

const mysqlUrl = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'
const skipMysql = await skipUnlessReachable('MariaDB', hostPort(mysqlUrl, 3306))
const rows = 10

/**
 * A worker whose one observer reads `source`; odd `n`s are refused for good (400, no retry) until
 * `failing` is cleared, so the first dispatch delivers half of a window.
 */
async function setUp(db: TestDatabase, source: string, entity: string, env: Record<string, string>) {
  const receiver = await startReceiver()
  const state = { failing: true }
  const nOf = (body: string) => (JSON.parse(body) as { after: { n: number } }).after.n
  receiver.reply((r) => (state.failing && nOf(r.body) % 2 === 1 ? { status: 400 } : { status: 200 }))
  const dir = await observersDir({
    'half.json': {
      name: 'half',
      source,
      entity,
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: `${receiver.url}/half` }],
      retry: { max_attempts: 1 },
    },
  })
  const worker = await runWorker(db.url, dir, env)
  return { receiver, worker, state, nOf, env: { DATABASE_URL: db.url, OBSERVERS_DIR: dir, ...env } }
}

/** Waits until the delivery record holds exactly these counts per outcome. */
async function outcomes(db: TestDatabase, expected: Record<string, number>) {
  await eventually(
    async () => {
      const { rows: counts } = await db.pool.query<{ outcome: string; n: number }>(
        'select outcome, count(*)::int as n from observers.deliveries group by outcome order by outcome',
      )
      const got = Object.fromEntries(counts.map((c) => [c.outcome, c.n]))
      return JSON.stringify(got) === JSON.stringify(expected) ? got : undefined
    },
    60_000,
    `delivery record ${JSON.stringify(expected)}`,
  )
}

/**
 * The half-delivered window of `source`: the dry run (API) counts it, a replay of our own change
 * log finds nothing of it, and a real replay (CLI) delivers exactly the missing half.
 */
async function replayHalf(t: {
  db: TestDatabase
  source: string
  entity: string
  s: Awaited<ReturnType<typeof setUp>>
}) {
  const { db, source, entity, s } = t
  await outcomes(db, { dead_lettered: rows / 2, delivered: rows / 2 })
  const preview = await api(s.worker.worker, '/api/replay', {
    method: 'POST',
    body: { since: '1h', source, entity, dry_run: true },
  })
  assert.equal(preview.status, 200, JSON.stringify(preview.body))
  assert.deepEqual(
    [preview.body.changes, preview.body.deliveries, preview.body.already_delivered],
    [rows, 5, 5],
  )
  const own = await runCliInProcess(['replay', '--since', '1h', '--dry-run', '--json'], s.env)
  assert.equal(JSON.parse(own.stdout).changes, 0, 'our own change log holds none of them')
  const unknown = await runCliInProcess(['replay', '--since', '1h', '--source', 'nope', '--dry-run'], s.env)
  assert.equal(unknown.code, 2)
  assert.match(unknown.output, /OB001: source "nope" is not configured/)
  s.state.failing = false
  const res = await runCliInProcess(['replay', '--since', '1h', '--source', source, '--json'], s.env)
  assert.equal(res.code, 0, res.output)
  assert.deepEqual([JSON.parse(res.stdout).deliveries, JSON.parse(res.stdout).already_delivered], [5, 5])
  await outcomes(db, { delivered: rows })
  const replayed = s.receiver.requests.slice(rows).map((r) => s.nOf(r.body))
  assert.deepEqual(
    replayed.toSorted((a, b) => a - b),
    [1, 3, 5, 7, 9],
  )
}

describe('replay of a FraiseQL change log', () => {
  let db: TestDatabase
  let s: Awaited<ReturnType<typeof setUp>>

  before(async () => {
    db = await createTestDatabase()
    await createFraiseqlChangeLog(db.pool)
    s = await setUp(db, 'fraiseql', 'Order', {
      FRAISEQL_CHANGE_LOG_TABLE: 'core.tb_entity_change_log',
      FRAISEQL_CHANGE_LOG_POLL_MS: '100',
    })
  })

  after(async () => {
    await s?.worker.stop()
    await s?.receiver.close()
    await db?.drop()
  })

  test('a half-delivered window replayed from the log delivers exactly the missing half', async () => {
    for (let n = 0; n < rows; n++) await insertFraiseqlChange(db.pool, { object_data: { n } })
    await insertFraiseqlChange(db.pool, { object_type: 'Invoice', object_data: { n: 99 } })
    await replayHalf({ db, source: 'fraiseql', entity: 'Order', s })
  })
})

describe('replay of a MySQL change-log table', { skip: skipMysql }, () => {
  const stem = `obs_${randomBytes(4).toString('hex')}`
  const table = `${stem}_items`
  const logTable = `${stem}_log`
  let db: TestDatabase
  let my: mysql.Connection
  let s: Awaited<ReturnType<typeof setUp>>

  before(async () => {
    db = await createTestDatabase()
    my = await mysql.createConnection(mysqlUrl)
    await my.query(`create table ${table} (id int primary key, n int)`)
    const env = { MYSQL_SOURCE_URL: mysqlUrl, MYSQL_SOURCE_TABLE: logTable, MYSQL_SOURCE_POLL_MS: '100' }
    const watched = await runCliInProcess(['watch', '--source', mysqlUrl, `test.${table}`], {
      DATABASE_URL: db.url,
      ...env,
    })
    assert.equal(watched.code, 0, watched.output)
    s = await setUp(db, 'mysql', `test.${table}`, env)
  })

  after(async () => {
    await s?.worker.stop()
    await s?.receiver.close()
    await my?.query(`drop table if exists ${table}`)
    await my?.query(`drop table if exists ${logTable}`)
    await my?.end()
    await db?.drop()
  })

  test('a half-delivered window replayed from the MySQL table delivers exactly the missing half', async () => {
    const values = Array.from({ length: rows }, (_, n) => `(${n + 1}, ${n})`).join(', ')
    await my.query(`insert into ${table} (id, n) values ${values}`)
    await replayHalf({ db, source: 'mysql', entity: `test.${table}`, s })
  })
})
