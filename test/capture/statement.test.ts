import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { exited, spawnCli } from '../helpers/process.ts'

let db: TestDatabase

before(async () => {
  db = await createTestDatabase(`
    create table orders (id int primary key, status text, total int, tenant text);
    create table p_orders (id int primary key, status text, total int, tenant text) partition by range (id);
    create table p_orders_all partition of p_orders default;
    create table lines (order_id int, line int, qty int, primary key (order_id, line));
    create table r_orders (id int primary key, v int) partition by range (id);
    create table r_orders_1 partition of r_orders for values from (0) to (100);
    create table animals (id int primary key, v int);
    create table cats (constraint cats_pkey primary key (id)) inherits (animals);
    create table legacy (id int primary key, v int, tenant text);
    create table shadowed (id int primary key, n int, o int, image text, before text)`)
})

after(async () => {
  await db?.drop()
})

interface Logged {
  event: string
  entity_id: string
  before: Record<string, unknown> | null
  after: Record<string, unknown> | null
  changed: string[]
  tenant_id: string | null
  actor_id: string | null
  bytes: string
}

/** The change log of one table, in seq order, with each change's queued byte size. */
async function logOf(entity: string): Promise<Logged[]> {
  const { rows } = await db.pool.query<Logged>(
    `select c.event, c.entity_id, c.before, c.after, c.changed, c.tenant_id, c.actor_id, p.bytes
       from observers.change_log c join observers.change_pending p using (seq)
      where c.entity = $1 order by c.seq`,
    [entity],
  )
  return rows
}

const brief = (rows: Logged[]) => rows.map((r) => `${r.event} ${r.entity_id} ${r.changed.join(',')}`)

async function captureKinds(table: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ name: string; level: string }>(
    `select tgname as name, case when tgtype & 1 = 1 then 'row' else 'statement' end as level
       from pg_trigger where tgrelid = $1::regclass order by tgname`,
    [table],
  )
  return rows.map((r) => `${r.name} ${r.level}`)
}

async function modeOf(entity: string): Promise<string | undefined> {
  const { rows } = await db.pool.query<{ capture: string }>(
    'select capture from observers.watched where entity = $1',
    [entity],
  )
  return rows[0]?.capture
}

/** Runs `sql` against `table` in one transaction, as user-7. */
async function asUser(sql: string): Promise<void> {
  await db.pool.query(`begin; set local observers.actor = 'user-7'; ${sql}; commit`)
}

test('multi-row statements on a plain table write exactly what row-level capture writes, in the same order', async () => {
  await db.pool.query(
    `select observers.watch('orders', 'tenant'); select observers.watch('p_orders', 'tenant')`,
  )
  assert.equal(await modeOf('public.orders'), 'statement')
  assert.equal(await modeOf('public.p_orders'), 'row', 'a partitioned table keeps the row-level trigger')
  assert.deepEqual(await captureKinds('orders'), [
    'observers_capture_delete statement',
    'observers_capture_insert statement',
    'observers_capture_update statement',
  ])

  for (const table of ['orders', 'p_orders']) {
    await asUser(
      `insert into ${table} values (3, 'new', 30, 'acme'), (1, 'new', 10, 'acme'), (2, 'new', 20, 'zeta')`,
    )
    await asUser(`update ${table} set total = total + 1 where id <> 2`)
    await asUser(`update ${table} set status = status`)
    await asUser(`update ${table} set id = 13, status = 'moved' where id = 3`)
    await asUser(`update ${table} set total = 0 where id > 100`)
    await asUser(`delete from ${table} where id in (1, 13)`)
  }

  const statement = await logOf('public.orders')
  // The row-level trigger Postgres clones onto a partition names the partition as its table.
  const row = await logOf('public.p_orders_all')
  const imagesOnly = (rows: Logged[]) => rows.map(({ bytes: _, ...r }) => r)
  assert.deepEqual(imagesOnly(statement), imagesOnly(row), 'row-level capture of the same statements')
  // Sizes are taken from the images as stored, uncompressed: a short image's header is 1 byte, not 4.
  statement.forEach((r, i) => {
    const difference = Number(row[i]?.bytes) - Number(r.bytes)
    assert.ok(difference >= 0 && difference <= 6, `${r.bytes} bytes against ${row[i]?.bytes}`)
  })
  assert.deepEqual(brief(statement), [
    'INSERT 3 ',
    'INSERT 1 ',
    'INSERT 2 ',
    'UPDATE 3 total',
    'UPDATE 1 total',
    'UPDATE 13 id,status',
    'DELETE 1 ',
    'DELETE 13 ',
  ])
  const moved = statement[5]
  assert.deepEqual(moved?.before, { id: 3, status: 'new', total: 31, tenant: 'acme' })
  assert.deepEqual(moved?.after, { id: 13, status: 'moved', total: 31, tenant: 'acme' })
  assert.deepEqual(
    statement.map((r) => [r.tenant_id, r.actor_id]),
    [...Array(8)].map((_, i) => [i === 2 ? 'zeta' : 'acme', 'user-7']),
  )
  assert.equal(statement[0]?.before, null)
  assert.equal(statement[7]?.after, null)
  assert.ok(statement.every((r) => Number(r.bytes) > 0))
})

test('composite keys, the actor fallback and noop_updates are set-based too', async () => {
  await db.pool.query(`select observers.watch('lines', null, 'app.user', true)`)
  assert.equal(await modeOf('public.lines'), 'statement')
  await db.pool.query(`begin; select set_config('app.user', 'u9', true);
    insert into lines values (1, 1, 5), (1, 2, 6); update lines set qty = qty; commit`)
  const rows = await logOf('public.lines')
  assert.deepEqual(brief(rows), ['INSERT [1, 1] ', 'INSERT [1, 2] ', 'UPDATE [1, 1] ', 'UPDATE [1, 2] '])
  assert.deepEqual(
    rows.map((r) => r.actor_id),
    ['u9', 'u9', 'u9', 'u9'],
  )
  assert.deepEqual(rows[3]?.before, rows[3]?.after, 'a no-op update is captured when asked')
})

test("columns named like the capture's own aliases are captured as columns, not mistaken for rows", async () => {
  await db.pool.query(`select observers.watch('shadowed')`)
  await db.pool.query(`insert into shadowed values (1, 1, 1, 'i', 'b'), (2, 2, 2, 'i', 'b');
    update shadowed set n = n + 1, image = 'j'; delete from shadowed where id = 2`)
  const rows = await logOf('public.shadowed')
  assert.deepEqual(brief(rows), [
    'INSERT 1 ',
    'INSERT 2 ',
    'UPDATE 1 image,n',
    'UPDATE 2 image,n',
    'DELETE 2 ',
  ])
  assert.deepEqual(rows[2]?.after, { id: 1, n: 2, o: 1, image: 'j', before: 'b' })
  assert.deepEqual(rows[4]?.before, { id: 2, n: 3, o: 2, image: 'j', before: 'b' })
})

test('partitions and inheritance children keep row-level capture, and see writes through their parent', async () => {
  await db.pool.query(`select observers.watch('r_orders_1'); select observers.watch('cats')`)
  assert.equal(await modeOf('public.r_orders_1'), 'row')
  assert.equal(await modeOf('public.cats'), 'row')
  assert.deepEqual(await captureKinds('cats'), ['observers_capture row'])
  await db.pool.query(
    `insert into r_orders values (1, 1), (2, 2); update r_orders set v = v + 1 where id = 2`,
  )
  await db.pool.query(`insert into cats values (7, 1); update animals set v = 2; delete from animals`)
  assert.deepEqual(brief(await logOf('public.r_orders_1')), ['INSERT 1 ', 'INSERT 2 ', 'UPDATE 2 v'])
  assert.deepEqual(brief(await logOf('public.cats')), ['INSERT 7 ', 'UPDATE 7 v', 'DELETE 7 '])

  await db.pool.query(`select observers.watch('animals')`)
  assert.equal(await modeOf('public.animals'), 'row', 'an inheritance parent keeps row-level capture')
})

test('`observers migrate` moves a table watched with the old row-level trigger to statement-level capture, keeping its arguments', async () => {
  await db.pool.query(`
    create trigger observers_capture after insert or update or delete on legacy
      for each row execute function observers.capture('tenant', 'app.legacy_user', '', 'id');
    insert into observers.watched (entity, relid, tenant_column, key_columns, noop_updates)
      values ('public.legacy', 'legacy'::regclass, 'tenant', '{id}', false)`)
  const child = spawnCli(['migrate'], { DATABASE_URL: db.url })
  const { code } = await exited(child)
  const output = child.output.join('')
  assert.equal(code, 0, output)
  assert.match(output, /capture triggers reinstalled: public\.legacy\n/)
  assert.doesNotMatch(output, /orders|cats/, 'tables already on the right kind are left alone')
  assert.equal(await modeOf('public.legacy'), 'statement')
  assert.deepEqual(await captureKinds('legacy'), [
    'observers_capture_delete statement',
    'observers_capture_insert statement',
    'observers_capture_update statement',
  ])
  await db.pool.query(`begin; select set_config('app.legacy_user', 'old-actor', true);
    insert into legacy values (1, 1, 't1'), (2, 2, 't2'); commit`)
  assert.deepEqual(
    (await logOf('public.legacy')).map((r) => [r.entity_id, r.tenant_id, r.actor_id]),
    [
      ['1', 't1', 'old-actor'],
      ['2', 't2', 'old-actor'],
    ],
  )
})
