import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createPool, withTransaction } from '../../src/db/pool.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'

let db: TestDatabase

before(async () => {
  db = await createTestDatabase()
})

after(async () => {
  await db?.drop()
})

const setting = async (client: { query(sql: string): Promise<{ rows: Array<{ v: string }> }> }) =>
  (await client.query(`select current_setting('synchronous_commit') as v`)).rows[0]?.v

test('an async-commit transaction skips the WAL flush for itself only, and still commits', async () => {
  // One connection, so the statement after the transaction runs on the session that ran it.
  const pool = createPool(db.url, { max: 1 })
  try {
    await pool.query('create table t (id int)')
    const before = await setting(pool)
    const inside = await withTransaction(
      pool,
      async (client) => {
        await client.query('insert into t values (1)')
        return setting(client)
      },
      { asyncCommit: true },
    )
    assert.equal(inside, 'off')
    assert.equal(await setting(pool), before, 'the session keeps its own setting')
    assert.equal(await withTransaction(pool, setting), before, 'a plain transaction waits for the flush')
    const { rows } = await pool.query<{ n: number }>('select count(*)::int as n from t')
    assert.equal(rows[0]?.n, 1)
  } finally {
    await pool.end()
  }
})

test('on a pipelined connection a statement handed to later() commits with the transaction, or rolls it all back', async () => {
  const pool = createPool(db.url, { max: 1, pipeline: true })
  try {
    await pool.query('create table p (id int primary key)')
    const xact = `pg_current_xact_id()::text as x`
    const ran = await withTransaction(pool, async (client, later) => {
      // BEGIN is not waited for: this statement must still run inside the transaction.
      const first = (await client.query<{ x: string }>(`select ${xact}`)).rows[0]?.x
      const inserted = later(
        client.query<{ id: number; x: string }>(`insert into p values (1) returning id, ${xact}`),
      )
      return { first, inserted }
    })
    const { rows } = await ran.inserted
    assert.deepEqual(rows, [{ id: 1, x: ran.first }], 'one transaction for both statements')

    await assert.rejects(
      withTransaction(pool, async (client, later) => {
        await client.query('insert into p values (2)')
        later(client.query('insert into p values (1)'))
      }),
      (err: { code?: string }) => err.code === '23505',
      "the failed statement's own error, not the COMMIT's",
    )
    const left = await pool.query<{ id: number }>('select id from p order by id')
    assert.deepEqual(
      left.rows.map((r) => r.id),
      [1],
      'the statement before the failure was rolled back with it',
    )
    assert.equal(
      (await pool.query<{ v: number }>('select 1 as v')).rows[0]?.v,
      1,
      'the connection is usable after',
    )
  } finally {
    await pool.end()
  }
})
