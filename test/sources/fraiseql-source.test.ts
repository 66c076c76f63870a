import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { loadConfig } from '../../src/config/config.ts'
import { withTransaction } from '../../src/db/pool.ts'
import { fraiseqlSource } from '../../src/sources/fraiseql/source.ts'
import { configuredSourceHealth } from '../../src/sources/index.ts'
import type { ChangeSource } from '../../src/sources/types.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { eventually } from '../helpers/worker.ts'
import { createFraiseqlChangeLog, insertFraiseqlChange } from './fraiseql-schema.ts'

let db: TestDatabase

before(async () => {
  db = await createTestDatabase()
})

after(async () => {
  await db?.drop()
})

let tables = 0
async function freshSource(commitWindowMs = 300_000) {
  const table = `core.log_${++tables}`
  await createFraiseqlChangeLog(db.pool, table)
  const source = fraiseqlSource({ name: `fq_${tables}`, table, pollMs: 100, commitWindowMs })
  return { table, source }
}

/** Waits until, by the database's clock, the newest entry of `table` is more than `ms` old. */
async function entriesOlderThan(table: string, ms: number) {
  await eventually(
    async () => {
      const { rows } = await db.pool.query<{ old: boolean }>(
        `select now() - max(created_at) > $1::int * interval '1 millisecond' as old from ${table}`,
        [ms],
      )
      return rows[0]?.old === true
    },
    30_000,
    `the entries of ${table} older than ${ms} ms`,
  )
}

/** One dispatch transaction without jobs: claim and record. */
function pass(source: ChangeSource, limit: number) {
  return withTransaction(db.pool, async (client) => {
    const batch = await source.claim(client, { rows: limit, bytes: 2 ** 30, changeBytes: 2 ** 30 })
    await batch?.record(client)
    return batch
  })
}

test('a backlog older than the window, created in one transaction, arrives whole across short passes', async () => {
  const { table, source } = await freshSource(1000)
  assert.equal((await pass(source, 2))?.events.length, 0, 'the first pass sets the floor')
  // One transaction: five entries with the same created_at, soon older than the commit window.
  await db.pool.query(
    `insert into ${table} (object_type, object_id, modification_type, object_data)
     select 'Order', gen_random_uuid(), 'INSERT', jsonb_build_object('n', g) from generate_series(1, 5) g`,
  )
  // Beyond the 1 s commit window; older only makes them older.
  await entriesOlderThan(table, 1000)
  const seen: number[] = []
  for (let i = 0; i < 4; i++) {
    const batch = await pass(source, 2)
    seen.push(...(batch?.events ?? []).map((e) => e.seq))
  }
  assert.deepEqual(seen, [1, 2, 3, 4, 5])
  assert.equal((await pass(source, 2))?.events.length, 0)
})

test('a second dispatcher is locked out of a source while the first holds it', async () => {
  const { table, source } = await freshSource()
  await insertFraiseqlChange(db.pool, {}, table)
  await withTransaction(db.pool, async (first) => {
    const mine = await source.claim(first, { rows: 10, bytes: 2 ** 30, changeBytes: 2 ** 30 })
    assert.equal(mine?.events.length, 1)
    const other = await withTransaction(db.pool, (second) =>
      source.claim(second, { rows: 10, bytes: 2 ** 30, changeBytes: 2 ** 30 }),
    )
    assert.equal(other, undefined)
    await mine?.record(first)
  })
})

test('the floor follows the commit window, and pruned ledger entries are never dispatched again', async () => {
  const { table, source } = await freshSource(1000)
  await insertFraiseqlChange(db.pool, {}, table)
  assert.equal((await pass(source, 10))?.events.length, 1)
  // The floor moves only as time passes the window, and the ledger keeps a window below the floor:
  // two windows on, the entry is below both; later changes nothing asserted.
  await entriesOlderThan(table, 2000)
  assert.equal((await pass(source, 10))?.events.length, 0)
  const { rows } = await db.pool.query(
    `select extract(epoch from now() - floor)::float8 as behind from observers.source_progress where source = $1`,
    [source.name],
  )
  assert.ok(rows[0].behind >= 1 && rows[0].behind < 60, `floor ${rows[0].behind}s behind now`)
  await source.tidy?.(db.pool)
  const ledger = await db.pool.query(
    'select count(*)::int as n from observers.source_ledger where source = $1',
    [source.name],
  )
  assert.equal(ledger.rows[0].n, 0, 'a full window below the floor, the ledger entry is gone')
  assert.equal(
    (await pass(source, 10))?.events.length,
    0,
    'and the entry is below the floor, so not read again',
  )
})

test('health reports backlog, lag and the warning threshold, measured at the source', async () => {
  await createFraiseqlChangeLog(db.pool)
  const config = loadConfig({
    DATABASE_URL: db.url,
    FRAISEQL_CHANGE_LOG_TABLE: 'core.tb_entity_change_log',
    OBSERVERS_BACKLOG_WARN: '3',
  })
  for (let i = 0; i < 4; i++) await insertFraiseqlChange(db.pool, {})
  await db.pool.query(`update core.tb_entity_change_log set created_at = created_at - interval '30 seconds'`)
  const [own, fraiseql] = await configuredSourceHealth(db.pool, config)
  assert.deepEqual([own?.name, own?.backlog, own?.backlogWarning], ['changelog', 0, false])
  assert.equal(fraiseql?.name, 'fraiseql')
  assert.equal(fraiseql?.backlog, 4)
  assert.equal(fraiseql?.backlogWarning, true)
  assert.ok((fraiseql?.lagSeconds ?? 0) >= 30, `lag ${fraiseql?.lagSeconds}`)
  assert.equal(fraiseql?.errorRate, null, 'no dispatcher in this process, so no error rate')
})

test('health names the reason when a source cannot be read', async () => {
  const config = loadConfig({ DATABASE_URL: db.url, FRAISEQL_CHANGE_LOG_TABLE: 'core.missing' })
  const [, fraiseql] = await configuredSourceHealth(db.pool, config)
  assert.equal(fraiseql?.backlog, null)
  assert.match(fraiseql?.lastError ?? '', /OB001: change-log table core.missing does not exist/)
})

test('passes are bounded by image bytes, and an entry above the change limit is dead-lettered unread', async () => {
  const { table, source } = await freshSource()
  assert.equal((await pass(source, 10))?.events.length, 0, 'the first pass sets the floor')
  // md5 text barely compresses, so its stored size stays near its length.
  const doc = (kb: number) =>
    `jsonb_build_object('text', (select string_agg(md5(random()::text), '') from generate_series(1, ${kb * 32})))`
  for (const kb of [20, 20, 20, 2000, 20]) {
    await db.pool.query(
      `insert into ${table} (object_type, object_id, modification_type, object_data)
       values ('Order', gen_random_uuid(), 'INSERT', ${doc(kb)})`,
    )
  }
  const limits = { rows: 10, bytes: 1, changeBytes: 500_000 }
  const passes: Array<{ events: number[]; malformed: string[] }> = []
  for (let i = 0; i < 5; i++) {
    const batch = await withTransaction(db.pool, async (client) => {
      const b = await source.claim(client, limits)
      await b?.record(client)
      return b
    })
    passes.push({
      events: batch?.events.map((e) => e.seq) ?? [],
      malformed: batch?.malformed.map((m) => m.key) ?? [],
    })
  }
  assert.deepEqual(passes, [
    { events: [1], malformed: [] },
    { events: [2], malformed: [] },
    { events: [3], malformed: [] },
    { events: [5], malformed: ['4'] },
    { events: [], malformed: [] },
  ])
})
