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
