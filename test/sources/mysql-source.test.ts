import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import mysql from 'mysql2/promise'
import { withTransaction } from '../../src/db/pool.ts'
import { createMysqlPool, type MysqlPool } from '../../src/sources/mysql/connect.ts'
import { triggerNames, watchMysqlTable } from '../../src/sources/mysql/install.ts'
import { mysqlSource } from '../../src/sources/mysql/source.ts'
import type { ChangeSource } from '../../src/sources/types.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { hostPort, skipUnlessReachable } from '../helpers/services.ts'
import { eventually } from '../helpers/worker.ts'

const mysqlUrl = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'
const skip = await skipUnlessReachable('MariaDB', hostPort(mysqlUrl, 3306))

const stem = `obs_${randomBytes(4).toString('hex')}`
const table = `${stem}_items`
const logTable = `${stem}_log`
// The pruning test's own table and change log, so it sets up all it checks.
const prunedTable = `${stem}_pruned`
const prunedLog = `${stem}_pruned_log`

describe('MySQL/MariaDB source: capture and progress', { skip }, () => {
  let db: TestDatabase
  let pool: MysqlPool
  let my: mysql.Connection

  before(async () => {
    db = await createTestDatabase()
    pool = createMysqlPool(mysqlUrl)
    my = await mysql.createConnection(mysqlUrl)
  })

  after(async () => {
    await my?.query(`drop table if exists ${table}`)
    await my?.query(`drop table if exists ${logTable}`)
    await my?.query(`drop table if exists ${prunedTable}`)
    await my?.query(`drop table if exists ${prunedLog}`)
    await my?.end()
    await pool?.end()
    await db?.drop()
  })

  async function pass(source: ChangeSource, limit = 100) {
    const limits = { rows: limit, bytes: 2 ** 30, changeBytes: 2 ** 30 }
    await source.read?.(db.pool, limits)
    return withTransaction(db.pool, async (client) => {
      const batch = await source.claim(client, limits)
      await batch?.record(client)
      return batch
    })
  }

  test('watching needs a primary key; composite keys and tenant columns become entity_id and tenant_id', async () => {
    await my.query(`create table ${table}_nokey (n int)`)
    try {
      await assert.rejects(
        watchMysqlTable(pool, { table: `test.${table}_nokey`, logTable }),
        /OB001: table test\.\S+ has no primary key/,
      )
    } finally {
      await my.query(`drop table ${table}_nokey`)
    }
    await my.query(
      `create table ${table} (a int, b varchar(5), account varchar(10), data blob, primary key (a, b))`,
    )
    await assert.rejects(
      watchMysqlTable(pool, { table: `test.${table}`, logTable, tenantColumn: 'nope' }),
      /OB001: table \S+ has no column nope/,
    )
    const entity = await watchMysqlTable(pool, { table: `test.${table}`, logTable, tenantColumn: 'account' })
    assert.equal(entity, `test.${table}`)
    await my.query(`insert into ${table} values (1, 'x', 'acme', 'hi')`)
    const source = mysqlSource({
      name: 'probe',
      url: mysqlUrl,
      logTable,
      pollMs: 100,
      commitWindowMs: 1000,
      retentionDays: 0,
    })
    try {
      const [e] = (await pass(source))?.events ?? []
      assert.deepEqual([e?.entity, e?.entity_id, e?.tenant_id], [entity, '[1, "x"]', 'acme'])
      assert.equal(e?.after?.data, Buffer.from('hi').toString('base64'), 'binary columns travel as base64')
      const [triggers] = await my.query<mysql.RowDataPacket[]>('show triggers like ?', [table])
      assert.deepEqual(triggers.map((t) => t.Trigger).sort(), Object.values(triggerNames(table)).sort())
    } finally {
      await source.close()
    }
  })

  test('past the window the ledger and the MySQL change log are pruned, and nothing is dispatched twice', async () => {
    await my.query(
      `create table ${prunedTable} (a int, b varchar(5), account varchar(10), data blob, primary key (a, b))`,
    )
    await watchMysqlTable(pool, {
      table: `test.${prunedTable}`,
      logTable: prunedLog,
      tenantColumn: 'account',
    })
    const source = mysqlSource({
      name: 'pruned',
      url: mysqlUrl,
      logTable: prunedLog,
      pollMs: 100,
      commitWindowMs: 1000,
      retentionDays: 0,
    })
    try {
      await pass(source)
      await my.query(`insert into ${prunedTable} values (2, 'y', 'acme', null), (3, 'z', 'acme', null)`)
      assert.equal((await pass(source))?.events.length, 2)
      // The floor moves only as time passes the window, and the ledger keeps a window below the
      // floor: two windows on (MySQL's clock), both entries are below both; later changes nothing.
      await eventually(
        async () => {
          const [rows] = await my.query<mysql.RowDataPacket[]>(
            `select timestampdiff(microsecond, max(created_at), utc_timestamp(6)) > 2000000 as old from ${prunedLog}`,
          )
          return Number(rows[0]?.old) === 1
        },
        30_000,
        'the MySQL change-log entries two windows old',
      )
      assert.equal((await pass(source))?.events.length, 0)
      await source.tidy?.(db.pool)
      const [left] = await my.query<mysql.RowDataPacket[]>(`select count(*) as n from ${prunedLog}`)
      assert.equal(Number(left[0]?.n), 0, 'dispatched rows a window below the floor are deleted in MySQL')
      const { rows } = await db.pool.query(
        `select count(*)::int as n from observers.source_ledger where source = 'pruned'`,
      )
      assert.equal(rows[0].n, 0)
      await my.query(`insert into ${prunedTable} values (4, 'w', 'acme', null)`)
      const later = (await pass(source))?.events ?? []
      assert.deepEqual(
        later.map((e) => e.entity_id),
        ['[4, "w"]'],
      )
      assert.deepEqual(await source.backlog(db.pool), { backlog: 0, oldestAgeSeconds: null })
    } finally {
      await source.close()
    }
  })
})
