import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import mysql from 'mysql2/promise'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { exited, spawnCli } from '../helpers/process.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { hostPort, skipUnlessReachable } from '../helpers/services.ts'
import { jobsFinished } from '../helpers/settled.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

const mysqlUrl = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'
const skip = await skipUnlessReachable('MariaDB', hostPort(mysqlUrl, 3306))

const stem = `obs_${randomBytes(4).toString('hex')}`
const table = `${stem}_orders`
const logTable = `${stem}_log`
const entity = `test.${table}`

/** Runs the CLI with the worker's environment and expects it to succeed. */
async function cli(args: string[], env: Record<string, string>) {
  const child = spawnCli(args, env)
  const { code } = await exited(child)
  assert.equal(code, 0, child.output.join(''))
  return child.output.join('')
}

describe('MySQL/MariaDB source', { skip }, () => {
  let db: TestDatabase
  let my: mysql.Connection
  let receiver: Receiver
  let worker: TestWorker
  let env: Record<string, string>

  before(async () => {
    db = await createTestDatabase()
    receiver = await startReceiver()
    my = await mysql.createConnection({ uri: mysqlUrl, supportBigNumbers: true, charset: 'utf8mb4' })
    await my.query(`create table ${table} (
      id bigint primary key, status varchar(20), total decimal(30,10), note text
    ) default charset = utf8mb4`)
    env = {
      DATABASE_URL: db.url,
      MYSQL_SOURCE_URL: mysqlUrl,
      MYSQL_SOURCE_TABLE: logTable,
      MYSQL_SOURCE_POLL_MS: '100',
      // A small queue pool: the suite runs files side by side on one server.
      OBSERVERS_CONCURRENCY: '8',
    }
    assert.match(await cli(['watch', '--source', mysqlUrl, entity], env), new RegExp(`watching ${entity}`))
    const dir = await observersDir({
      'my-orders.json': {
        name: 'my-orders',
        source: 'mysql',
        entity,
        events: ['INSERT', 'UPDATE', 'DELETE'],
        actions: [
          {
            type: 'webhook',
            url: `${receiver.url}/my/{{ entity_id }}`,
            headers: { 'x-event': '{{ event }}', 'x-delivery-id': '{{ delivery_id }}' },
          },
        ],
      },
    })
    worker = await runWorker(db.url, dir, env)
  })

  after(async () => {
    await worker?.stop()
    await my?.query(`drop table if exists ${table}`)
    await my?.query(`drop table if exists ${logTable}`)
    await my?.end()
    await receiver?.close()
    await db?.drop()
  })

  const requestsTo = (path: string) => receiver.requests.filter((r) => r.path === path)
  let nextMarker = 900
  /**
   * A later MariaDB change delivered and every job finished: the source dispatches in id order,
   * so any delivery of a change committed before the marker has been made by then.
   */
  const passedMarker = async () => {
    const id = nextMarker++
    await my.query(`insert into ${table} values (?, 'marker', 0, null)`, [id])
    await eventually(() => requestsTo(`/my/${id}`).length > 0, 30_000, 'the marker change')
    await jobsFinished(db.pool)
  }

  test('insert, update and delete in MariaDB each fire once, numbers and text intact', async () => {
    await my.query(`set @observers_actor = 'user-7'`)
    await my.query(`insert into ${table} values (9007199254740993, 'new', 12.5, 'café 😀')`)
    await my.query(`update ${table} set status = 'paid' where id = 9007199254740993`)
    await my.query(`delete from ${table} where id = 9007199254740993`)
    await my.query('set @observers_actor = null')
    await eventually(() => requestsTo('/my/9007199254740993').length >= 3, 60_000, 'three deliveries')
    await passedMarker()
    const hooks = requestsTo('/my/9007199254740993')
    assert.equal(hooks.length, 3)
    const byEvent = new Map(hooks.map((r) => [r.headers['x-event'], r.body]))
    const insert = byEvent.get('INSERT')!
    for (const exact of ['"id":9007199254740993', '"total":12.5000000000', '"note":"café 😀"'])
      assert.ok(insert.includes(exact), `${exact} in ${insert}`)
    const ins = JSON.parse(insert)
    assert.deepEqual(
      [ins.entity, ins.entity_id, ins.actor_id, ins.source],
      [entity, '9007199254740993', 'user-7', 'mysql'],
    )
    const upd = JSON.parse(byEvent.get('UPDATE')!)
    assert.deepEqual(upd.changed, ['status'])
    assert.equal(upd.before.status, 'new')
    assert.equal(upd.after.status, 'paid')
    const del = JSON.parse(byEvent.get('DELETE')!)
    assert.equal(del.after, null)
    assert.equal(del.before.status, 'paid')
    assert.equal(new Set(hooks.map((r) => r.headers['x-delivery-id'])).size, 3)
  })

  test('rows committed out of order are each dispatched exactly once', async () => {
    const late = await mysql.createConnection(mysqlUrl)
    try {
      // Row 1 takes the lower auto_increment id in the change log but commits after row 2.
      await late.query('begin')
      await late.query(`insert into ${table} values (1, 'late', 1, null)`)
      await my.query(`insert into ${table} values (2, 'early', 2, null)`)
      await eventually(() => requestsTo('/my/2').length > 0, 60_000, 'the early committer')
      await passedMarker()
      assert.equal(requestsTo('/my/1').length, 0, 'an uncommitted row is not visible yet')
      await late.query('commit')
      await eventually(() => requestsTo('/my/1').length > 0, 60_000, 'the late committer')
      await passedMarker()
      assert.equal(requestsTo('/my/1').length, 1)
      assert.equal(requestsTo('/my/2').length, 1)
      const [ids] = await my.query<mysql.RowDataPacket[]>(
        `select entity_id from ${logTable} where entity_id in ('1', '2') order by id`,
      )
      assert.deepEqual(
        ids.map((r) => r.entity_id),
        ['1', '2'],
        'the late row really has the lower id',
      )
    } finally {
      await late.end()
    }
  })

  test('a malformed change-log row goes to the DLQ and the rows behind it still fire', async () => {
    await my.query(
      `insert into ${logTable} (event, entity, entity_id, after_image, created_at)
       values ('INSERT', ?, '3', '{"id": 3,', utc_timestamp(6))`,
      [entity],
    )
    await my.query(`insert into ${table} values (4, 'new', 4, null)`)
    await eventually(() => requestsTo('/my/4').length > 0, 60_000, 'the row behind')
    const dead = await eventually(async () => {
      const { rows } = await db.pool.query(
        `select last_error_code, entity, entity_id from observers.dlq where action_type = 'malformed'`,
      )
      return rows[0]
    }, 60_000)
    assert.deepEqual(dead, { last_error_code: 'OB009', entity, entity_id: '3' })
    assert.equal(requestsTo('/my/3').length, 0)
  })

  test('health of the mysql source: caught up, measured at MariaDB', async () => {
    const health = (await worker.worker.dispatcher.health()).find((h) => h.name === 'mysql')
    assert.equal(health?.kind, 'mysql')
    assert.equal(health?.backlog, 0)
    assert.equal(health?.lagSeconds, null)
    assert.equal(health?.malformed, 1)
    assert.ok(health?.lastPassAt)
  })

  test('unwatch --source drops the triggers', async () => {
    assert.match(
      await cli(['unwatch', '--source', 'mysql', entity], env),
      new RegExp(`stopped watching ${entity}`),
    )
    const [before] = await my.query<mysql.RowDataPacket[]>(`select count(*) as n from ${logTable}`)
    await my.query(`insert into ${table} values (5, 'new', 5, null)`)
    const [now] = await my.query<mysql.RowDataPacket[]>(`select count(*) as n from ${logTable}`)
    assert.equal(Number(now[0]?.n), Number(before[0]?.n))
    const [triggers] = await my.query<mysql.RowDataPacket[]>('show triggers like ?', [table])
    assert.equal(triggers.length, 0)
  })
})
