import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import mysql from 'mysql2/promise'
import { killMidStream } from '../helpers/crash.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { cliWorkerEnv, exited, spawnCli, trackedWebhook } from '../helpers/process.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { hostPort, skipUnlessReachable } from '../helpers/services.ts'

const mysqlUrl = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'
const skip = await skipUnlessReachable('MariaDB', hostPort(mysqlUrl, 3306))

const stem = `obs_${randomBytes(4).toString('hex')}`
const table = `${stem}_payments`
const logTable = `${stem}_log`

describe('MySQL/MariaDB source under SIGKILL', { skip }, () => {
  let db: TestDatabase
  let my: mysql.Connection
  let receiver: Receiver
  let env: Record<string, string>

  before(async () => {
    db = await createTestDatabase()
    receiver = await startReceiver()
    my = await mysql.createConnection(mysqlUrl)
    await my.query(`create table ${table} (id int primary key, amount int not null)`)
    const payments = trackedWebhook({
      name: 'payments',
      source: 'mysql',
      entity: `test.${table}`,
      url: receiver.url,
      retry: { max_attempts: 10, initial_delay_ms: 100, backoff_strategy: 'fixed' },
      // A short limit hands the killed worker's in-flight jobs back soon.
      timeoutMs: 1000,
    })
    env = await cliWorkerEnv(db.url, payments, {
      MYSQL_SOURCE_URL: mysqlUrl,
      MYSQL_SOURCE_TABLE: logTable,
      MYSQL_SOURCE_POLL_MS: '100',
      // A small queue pool: the suite runs files side by side on one server.
      OBSERVERS_CONCURRENCY: '8',
    })
    const watch = spawnCli(['watch', '--source', 'mysql', `test.${table}`], env)
    assert.equal((await exited(watch)).code, 0, watch.output.join(''))
  })

  after(async () => {
    await my?.query(`drop table if exists ${table}`)
    await my?.query(`drop table if exists ${logTable}`)
    await my?.end()
    await receiver?.close()
    await db?.drop()
  })

  test('every MariaDB change is delivered and dispatched once across a SIGKILL', async (t) => {
    const total = 300
    await killMidStream(t, {
      env,
      receiver,
      total,
      batchSize: 10,
      writeBatch: (first, size) =>
        my.query(`insert into ${table} (id, amount) values ?`, [
          Array.from({ length: size }, (_, i) => [first + i, first + i]),
        ]),
      numberedBy: 'id',
      killAfter: 50,
      deliverWithinMs: 60_000,
    })
    const { rows } = await db.pool.query(
      `select count(*)::int as jobs from pgboss.job where data ->> 'observer' = 'payments'`,
    )
    assert.equal(rows[0].jobs, total, 'each change was dispatched exactly once')
  })
})
