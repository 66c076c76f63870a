import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { migrate } from '../../src/db/migrate.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { observersDir, runWorker, startError } from '../helpers/worker.ts'

/**
 * A rolled-back deploy: the database carries a migration this code does not know, as a newer
 * release would have left it (a row in observers.migrations, as `observers migrate` records).
 */
let db: TestDatabase

before(async () => {
  db = await createTestDatabase()
})

after(async () => {
  await db?.drop()
})

test('a worker older than the database starts and says so when the newer migration is not breaking', async () => {
  await db.pool.query(
    `insert into observers.migrations (id, name, breaking) values (9009, 'future_index', false)`,
  )
  const worker = await runWorker(db.url, await observersDir({}))
  try {
    const warning = worker.logs.records.find((r) => String(r.msg).startsWith('database has migrations newer'))
    assert.equal(
      warning?.msg,
      'database has migrations newer than this worker: 9009_future_index; none breaking',
    )
    assert.equal(warning?.level, 'warn')
  } finally {
    await worker.stop()
  }
  // `observers migrate` of the older release leaves the newer migration alone.
  assert.deepEqual(await migrate(db.pool), [])
})

test('a worker older than the database refuses when a newer migration is breaking', async () => {
  await db.pool.query(
    `insert into observers.migrations (id, name, breaking) values (9010, 'drop_column', true)`,
  )
  const err = await startError(db.url, await observersDir({}))
  assert.equal(err.code, 'OB009')
  assert.equal(
    err.message,
    'database has breaking migrations newer than this version: 9010_drop_column; upgrade pg-observers',
  )
  await assert.rejects(migrate(db.pool), /OB009: database has breaking migrations newer than this version/)
})

test('the shipped migrations are recorded as not breaking', async () => {
  const { rows } = await db.pool.query<{ id: number; breaking: boolean }>(
    'select id, breaking from observers.migrations where id < 9000 order by id',
  )
  assert.ok(rows.length >= 4)
  assert.ok(rows.every((r) => r.breaking === false))
})
