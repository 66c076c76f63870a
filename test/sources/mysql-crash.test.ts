import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import mysql from 'mysql2/promise'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { exited, spawnCli, waitForOutput } from '../helpers/process.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { hostPort, skipUnlessReachable } from '../helpers/services.ts'
import { eventually, observersDir } from '../helpers/worker.ts'

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
    const dir = await observersDir({
      'payments.json': {
        name: 'payments',
        source: 'mysql',
        entity: `test.${table}`,
        events: ['INSERT'],
        retry: { max_attempts: 10, initial_delay_ms: 100, backoff_strategy: 'fixed' },
        actions: [
          // A short limit hands the killed worker's in-flight jobs back soon.
          {
            type: 'webhook',
            url: receiver.url,
            timeout_ms: 1000,
            headers: { 'x-delivery-id': '{{ delivery_id }}' },
          },
        ],
      },
    })
    env = {
      DATABASE_URL: db.url,
      OBSERVERS_DIR: dir,
      PORT: '0',
      MYSQL_SOURCE_URL: mysqlUrl,
      MYSQL_SOURCE_TABLE: logTable,
      MYSQL_SOURCE_POLL_MS: '100',
      // A small queue pool: the suite runs files side by side on one server.
      OBSERVERS_CONCURRENCY: '8',
    }
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
    const first = spawnCli(['start'], env)
    // A failed assertion must not leave a worker running.
    t.after(() => first.kill('SIGKILL'))
    await waitForOutput(first, /loaded 1 observer/)
    const total = 300
    let inserted = 0
    const writer = (async () => {
      while (inserted < total) {
        const rows = Array.from({ length: 10 }, (_, i) => [inserted + i + 1, inserted + i + 1])
        await my.query(`insert into ${table} (id, amount) values ?`, [rows])
        inserted += 10
        await new Promise((r) => setTimeout(r, 10))
      }
    })()
    await eventually(() => receiver.requests.length > 50, 30_000, 'deliveries under way')
    first.kill('SIGKILL')
    assert.equal((await exited(first)).signal, 'SIGKILL')
    await writer
    const second = spawnCli(['start'], env)
    t.after(() => second.kill('SIGKILL'))
    try {
      const id = (body: string) => JSON.parse(body).after.id as number
      await eventually(() => new Set(receiver.requests.map((r) => id(r.body))).size >= total, 60_000, 'all')
      const byRow = new Map<number, Set<string>>()
      for (const r of receiver.requests) {
        byRow.set(id(r.body), (byRow.get(id(r.body)) ?? new Set()).add(String(r.headers['x-delivery-id'])))
      }
      assert.equal(byRow.size, total)
      for (const [row, ids] of byRow) assert.equal(ids.size, 1, `row ${row}: one delivery id`)
      const { rows } = await db.pool.query(
        `select count(*)::int as jobs from pgboss.job where data ->> 'observer' = 'payments'`,
      )
      assert.equal(rows[0].jobs, total, 'each change was dispatched exactly once')
    } finally {
      second.kill('SIGTERM')
      assert.equal((await exited(second)).code, 0, 'SIGTERM drains and exits 0')
    }
  })
})
