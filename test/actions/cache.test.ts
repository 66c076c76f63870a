import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { createClient } from 'redis'
import { type CacheAction, cache, isGlobTemplate } from '../../src/actions/cache.ts'
import { closeConnections } from '../../src/actions/connections.ts'
import { loadObservers } from '../../src/observers/load.ts'
import { actionContext, delivery } from '../helpers/action-context.ts'
import { kindObserver, observerFiles, startActionWorker, withWorker } from '../helpers/action-worker.ts'
import type { TestDatabase } from '../helpers/db.ts'
import { assertNoSecrets, completedOutput, dlqCount, dlqRow } from '../helpers/outcomes.ts'
import { hostPort, skipUnlessReachable } from '../helpers/services.ts'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts'
import { eventually, type TestWorker } from '../helpers/worker.ts'

const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const target = hostPort(redisUrl, 6379)
const skip = await skipUnlessReachable('Redis', target)

const prefix = `obs-test-${randomBytes(4).toString('hex')}`
const aclUser = `obs_test_${randomBytes(4).toString('hex')}`
const aclPassword = `pw-${randomBytes(8).toString('hex')}`
const tableSql =
  'create table items (id bigint primary key, kind text not null, name text, owner text, big numeric(40,10))'
const observer = (name: string, action: Record<string, unknown>) => kindObserver('items', name, action)

test('a key_pattern is a pattern only when its literal text holds a glob character', () => {
  const cases: Array<[string, boolean]> = [
    ['product:{{ id }}', false],
    ['product:{{ id }}:*', true],
    ['product:?', true],
    ['product:[ab]', true],
    ["product:{{ name | append: '*' }}", false],
    ['{% if id %}*{% endif %}', true],
  ]
  for (const [source, glob] of cases) assert.equal(isGlobTemplate(source), glob, source)
})

test('refresh without value_template is refused when the observer loads', async () => {
  const dir = await observerFiles(
    observer('fresh', { type: 'cache', action: 'refresh', key_pattern: 'item:{{ id }}' }),
  )
  const { observers, problems } = await loadObservers(dir)
  assert.equal(observers.length, 0)
  assert.deepEqual(
    problems.map((p) => [p.code, p.path]),
    [['OB005', '/actions/0']],
  )
  assert.match(problems[0]!.message, /value_template/)
})

describe('cache on Redis', { skip }, () => {
  const redis = createClient({ url: redisUrl })
  let proxy: TcpProxy
  let db: TestDatabase
  let worker: TestWorker
  const gone = (key: string) => eventually(async () => (await redis.exists(key)) === 0, 15_000, `${key} gone`)

  before(async () => {
    await redis.connect()
    // A user confined to this run's keys (anything else answers NOPERM) and denied KEYS, which
    // would block the server: patterns must go through SCAN.
    const acl = ['reset', 'on', `>${aclPassword}`, `~${prefix}:*`, '+@all', '-keys']
    await redis.sendCommand(['ACL', 'SETUSER', aclUser, ...acl])
    proxy = await startTcpProxy(target)
    ;({ db, worker } = await startActionWorker(
      tableSql,
      [
        observer('one', { type: 'cache', key_pattern: `${prefix}:item:{{ id }}` }),
        observer('many', { type: 'cache', key_pattern: `${prefix}:list:{{ owner }}:*` }),
        observer('fresh', {
          type: 'cache',
          action: 'refresh',
          key_pattern: `${prefix}:item:{{ id }}:json`,
          value_template: { id: '{{ id }}', name: '{{ name }}', big: '{{ big }}' },
          ttl_seconds: 120,
        }),
        observer('text', {
          type: 'cache',
          action: 'refresh',
          key_pattern: `${prefix}:item:{{ id }}:text`,
          value_template: 'name={{ name }}',
        }),
        observer('flaky', { type: 'cache', key_pattern: `${prefix}:item:{{ id }}` }),
        observer('denied', { type: 'cache', key_pattern: `elsewhere-${prefix}:{{ id }}` }),
        observer('broken', { type: 'cache', key_pattern: `${prefix}:item:{% include 'no-such-partial' %}` }),
      ],
      { REDIS_URL: `redis://${aclUser}:${aclPassword}@127.0.0.1:${proxy.port}` },
    ))
  })

  after(async () => {
    await worker?.stop()
    await closeConnections()
    await db?.drop()
    await proxy?.close()
    for await (const keys of redis.scanIterator({ MATCH: `*${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await redis.unlink(keys)
    }
    await redis.sendCommand(['ACL', 'DELUSER', aclUser])
    await redis.close()
  })

  test('invalidate unlinks the rendered key and nothing else', async () => {
    await redis.set(`${prefix}:item:1`, 'stale')
    await redis.set(`${prefix}:item:10`, 'other')
    await db.pool.query(`insert into items values (1, 'one', 'Lamp', 'ann', 1)`)
    await gone(`${prefix}:item:1`)
    assert.equal(await redis.get(`${prefix}:item:10`), 'other')
    const output = await completedOutput(db.pool, 'one')
    assert.deepEqual(output, {
      status: null,
      duration_ms: output.duration_ms,
      operation: 'invalidate',
      key: `${prefix}:item:1`,
      removed: 1,
    })
  })

  test('a pattern unlinks every matching key through SCAN and leaves the rest', async () => {
    const alice = Array.from({ length: 1200 }, (_, i) => `${prefix}:list:alice:${i}`)
    await redis.mSet(alice.map((k) => [k, 'x'] as [string, string]))
    await redis.mSet([
      [`${prefix}:list:bob:1`, 'x'],
      [`${prefix}:list:alicia:1`, 'x'],
    ])
    await db.pool.query(`insert into items values (2, 'many', 'Lamp', 'alice', 1)`)
    const output = await completedOutput(db.pool, 'many')
    assert.equal(output.removed, 1200)
    assert.equal(await redis.exists(alice), 0)
    assert.equal(await redis.exists([`${prefix}:list:bob:1`, `${prefix}:list:alicia:1`]), 2)
  })

  test('glob characters coming from the row match only themselves', async () => {
    await redis.mSet([
      [`${prefix}:list:a*:1`, 'x'],
      [`${prefix}:list:ab:1`, 'x'],
    ])
    await db.pool.query(`insert into items values (3, 'many', 'Lamp', 'a*', 1)`)
    await gone(`${prefix}:list:a*:1`)
    assert.equal(await redis.get(`${prefix}:list:ab:1`), 'x')
  })

  test('refresh stores the rendered JSON, exact numbers and all, with its TTL', async () => {
    await db.pool.query(`insert into items values (4, 'fresh', 'Desk "XL"', 'ann', 9007199254740993.5)`)
    const key = `${prefix}:item:4:json`
    const value = await eventually(() => redis.get(key).then((v) => v ?? undefined))
    assert.equal(value, '{"id":4,"name":"Desk \\"XL\\"","big":9007199254740993.5000000000}')
    const ttl = await redis.ttl(key)
    assert.ok(ttl > 0 && ttl <= 120, `TTL ${ttl} within ttl_seconds`)
  })

  test('refresh with a text template and no ttl_seconds stores a key that does not expire', async () => {
    await db.pool.query(`insert into items values (5, 'text', 'Chair', 'ann', 1)`)
    const key = `${prefix}:item:5:text`
    assert.equal(await eventually(() => redis.get(key).then((v) => v ?? undefined)), 'name=Chair')
    assert.equal(await redis.ttl(key), -1)
  })

  test('a Redis outage is retried until the connection is back', async () => {
    await redis.set(`${prefix}:item:6`, 'stale')
    proxy.cut()
    await db.pool.query(`insert into items values (6, 'flaky', 'Rug', 'ann', 1)`)
    const retried = await eventually(() =>
      worker.logs.records.find((r) => r.observer === 'flaky' && r.outcome === 'retry'),
    )
    assert.equal(retried.code, 'OB006')
    assert.equal(await redis.get(`${prefix}:item:6`), 'stale', 'nothing happened while Redis was away')
    proxy.restore()
    await gone(`${prefix}:item:6`)
    assert.equal(await dlqCount(db.pool, 'flaky'), 0)
  })

  test('a command Redis refuses (NOPERM) dead-letters at once and the password stays secret', async () => {
    await db.pool.query(`insert into items values (7, 'denied', 'Vase', 'ann', 1)`)
    const row = await dlqRow(db.pool, 'denied')
    assert.equal(row.attempts, 1)
    assert.equal(row.last_error_code, 'OB007')
    assert.match(row.last_error, /cache invalidate: redis answered NOPERM/)
    await assertNoSecrets(db.pool, worker.logs, [aclPassword])
  })

  test('credentials Redis refuses (WRONGPASS) are a permanent error that never shows the password', async () => {
    const action: CacheAction = { type: 'cache', key_pattern: `${prefix}:item:1` }
    const url = `redis://${aclUser}:not-the-password@${target.host}:${target.port}`
    const err = await cache.execute(action, actionContext(delivery(action), { REDIS_URL: url })).then(
      () => assert.fail('a refused login must fail'),
      (e: Error & { retryable?: boolean }) => e,
    )
    assert.equal(err.retryable, false)
    assert.match(err.message, /refused the connection: WRONGPASS/)
    assert.doesNotMatch(err.message, /not-the-password/)
  })

  test('a template that fails to render dead-letters with OB008', async () => {
    await db.pool.query(`insert into items values (8, 'broken', 'Cup', 'ann', 1)`)
    const row = await dlqRow(db.pool, 'broken')
    assert.equal(row.last_error_code, 'OB008')
    assert.equal(row.attempts, 1)
    assert.match(row.last_error, /no-such-partial/)
  })
})

describe('cache without REDIS_URL', () => {
  test('is reported at startup and its deliveries fail permanently with OB005', async () => {
    const one = observer('one', { type: 'cache', key_pattern: 'item:{{ id }}' })
    await withWorker(tableSql, [one], {}, async (worker, db) => {
      const warning = worker.logs.records.find((r) => r.code === 'OB005' && r.variable === 'REDIS_URL')
      assert.equal(warning?.observer, 'one')
      await db.pool.query(`insert into items values (1, 'one', 'Lamp', 'ann', 1)`)
      const row = await dlqRow(db.pool, 'one')
      assert.equal(row.last_error_code, 'OB005')
      assert.equal(row.attempts, 1)
      assert.match(row.last_error, /REDIS_URL is not set/)
    })
  })
})
