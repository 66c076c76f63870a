import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import mysql from 'mysql2/promise'
import { lockKeys } from '../../src/db/locks.ts'
import { createMysqlPool } from '../../src/sources/mysql/connect.ts'
import { watchMysqlTable } from '../../src/sources/mysql/install.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { hostPort, skipUnlessReachable } from '../helpers/services.ts'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api } from '../ops/helpers.ts'

const mysqlUrl = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'
const skip = await skipUnlessReachable('MariaDB', hostPort(mysqlUrl, 3306))

const stem = `obs_${randomBytes(4).toString('hex')}`
const table = `${stem}_burst`
const logTable = `${stem}_log`
// More than one keyset page (1000 ids) and several dispatch batches.
const burst = 2600
const batchSize = 400

describe('MySQL source under a burst', { skip }, () => {
  let db: TestDatabase
  let my: mysql.Connection
  let receiver: Receiver
  let proxy: TcpProxy
  let worker: TestWorker
  let dir: string
  let env: Record<string, string>

  before(async () => {
    db = await createTestDatabase()
    receiver = await startReceiver()
    my = await mysql.createConnection({ uri: mysqlUrl })
    await my.query(`create table ${table} (id bigint primary key, n int not null)`)
    const pool = createMysqlPool(mysqlUrl)
    try {
      await watchMysqlTable(pool, { table, tenantColumn: undefined, logTable })
    } finally {
      await pool.end()
    }
    const values = Array.from({ length: burst }, (_, i) => `(${i + 1}, ${i + 1})`).join(', ')
    await my.query(`insert into ${table} (id, n) values ${values}`)
    const u = new URL(mysqlUrl)
    proxy = await startTcpProxy({ host: u.hostname, port: Number(u.port || 3306) })
    u.host = `127.0.0.1:${proxy.port}`
    dir = await observersDir({
      'burst.json': {
        name: 'burst',
        source: 'mysql',
        entity: `test.${table}`,
        events: ['INSERT'],
        actions: [{ type: 'webhook', url: `${receiver.url}/burst`, body_template: '{{ n }}' }],
      },
    })
    env = { MYSQL_SOURCE_URL: u.toString(), MYSQL_SOURCE_TABLE: logTable }
    worker = await runWorker(db.url, dir, {
      ...env,
      // After the burst, the dispatcher's next read is a minute away: probes alone meet MySQL then.
      MYSQL_SOURCE_POLL_MS: '60000',
      OBSERVERS_DISPATCH_BATCH_SIZE: String(batchSize),
    })
  })

  after(async () => {
    await worker?.stop()
    await my?.query(`drop table if exists ${table}`)
    await my?.query(`drop table if exists ${logTable}`)
    await my?.end()
    await proxy?.close()
    await receiver?.close()
    await db?.drop()
  })

  test('a burst larger than a page is delivered completely, dispatched in order', async () => {
    const delivered = () => new Set(receiver.requests.map((r) => Number(r.body)))
    await eventually(() => delivered().size >= burst, 120_000, `${burst} deliveries`)
    assert.equal(delivered().size, burst)
    const [logged] = await my.query<mysql.RowDataPacket[]>(
      `select id from ${logTable} order by created_at, id`,
    )
    const { rows } = await db.pool.query(
      `select entry_key from observers.source_ledger where source = 'mysql' order by dispatched_at, entry_key::bigint`,
    )
    assert.equal(rows.length, burst)
    assert.deepEqual(
      rows.map((r) => String(r.entry_key)),
      logged.map((r) => String(r.id)),
      'each pass takes the oldest entries left',
    )
  })

  test('/metrics and /readyz report the backlog without querying MySQL', async () => {
    await eventually(
      async () => {
        const h = (await worker.worker.dispatcher.health()).find((s) => s.name === 'mysql')
        return h?.backlog === 0 && h.lastPassAt !== null
      },
      30_000,
      'the mysql source caught up',
    )
    const sent = proxy.bytesFromClients
    for (let i = 0; i < 3; i++) {
      const metrics = await api(worker.worker, '/metrics')
      assert.equal(metrics.status, 200)
      assert.match(String(metrics.body), /observers_source_backlog\{source="mysql",kind="mysql"\} 0/)
      const ready = await api(worker.worker, '/readyz')
      assert.equal(ready.body.checks.sources.ok, true, JSON.stringify(ready.body))
    }
    assert.equal(proxy.bytesFromClients, sent, 'no probe reached MySQL')
  })
  test('a MySQL that stops answering holds no Postgres transaction or dispatch lock', async () => {
    await worker.stop()
    worker = await runWorker(db.url, dir, { ...env, MYSQL_SOURCE_POLL_MS: '100' })
    proxy.stall()
    const sent = proxy.bytesFromClients
    try {
      await my.query(`insert into ${table} (id, n) values (${burst + 1}, ${burst + 1})`)
      await eventually(() => proxy.bytesFromClients > sent, 20_000, 'the dispatcher waiting on MySQL')
      const { rows } = await db.pool.query(
        `select count(*)::int as n from pg_locks
          where locktype = 'advisory' and classid::bigint = $1 and objsubid = 2
            and database = (select oid from pg_database where datname = current_database())`,
        [lockKeys.sourceClass],
      )
      assert.equal(rows[0].n, 0, 'the source lock is taken only once MySQL has answered')
    } finally {
      proxy.resume()
    }
    await eventually(
      () => receiver.requests.some((r) => r.body === String(burst + 1)),
      30_000,
      'the row written while MySQL stalled',
    )
  })
})
