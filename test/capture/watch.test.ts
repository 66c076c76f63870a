import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { exited, spawnCli } from '../helpers/process.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker } from '../helpers/worker.ts'

let db: TestDatabase
let receiver: Receiver

before(async () => {
  db = await createTestDatabase(`
    create schema "a.b"; create table "a.b".c (id int primary key);
    create schema a; create table a."b.c" (id int primary key);
    create table orders (id int primary key)`)
  receiver = await startReceiver()
})

after(async () => {
  await receiver?.close()
  await db?.drop()
})

async function cli(args: string[]) {
  const child = spawnCli(args, { DATABASE_URL: db.url })
  const { code } = await exited(child)
  return { code, output: child.output.join('') }
}

const hook = (name: string, entity: string) => ({
  name,
  entity,
  events: ['INSERT'],
  actions: [{ type: 'webhook', url: `${receiver.url}/${name}`, body_template: '{{ entity }} {{ id }}' }],
})

test('schema "a.b" table c and schema a table "b.c" are two entities, each with its own observer', async (t) => {
  const dir = await observersDir({
    'schema-dot.json': hook('schema-dot', '"a.b".c'),
    'table-dot.json': hook('table-dot', 'a."b.c"'),
    'orders.json': hook('orders', 'orders'),
  })
  const w = await runWorker(db.url, dir)
  t.after(() => w.stop())
  assert.deepEqual(w.worker.current().problems, [])
  await db.pool.query(
    `insert into "a.b".c values (1); insert into a."b.c" values (2); insert into orders values (3)`,
  )
  await eventually(() => receiver.requests.length >= 3, 20_000, 'three deliveries')
  const got = receiver.requests.map((r) => `${r.path} ${r.body}`).sort()
  assert.deepEqual(got, ['/orders public.orders 3', '/schema-dot "a.b".c 1', '/table-dot a."b.c" 2'])
  const { rows } = await db.pool.query('select entity from observers.change_log order by entity')
  assert.deepEqual(
    rows.map((r) => r.entity),
    ['"a.b".c', 'a."b.c"', 'public.orders'],
    'plain names are written as before',
  )
})

test("observer files on the product's own tables are refused with OB001; the other observers run", async (t) => {
  receiver.requests.length = 0
  const dir = await observersDir({
    'log.json': hook('log', 'observers.change_log'),
    'ledger.json': hook('ledger', 'observers.source_ledger'),
    'jobs.json': hook('jobs', 'pgboss.job'),
    'orders.json': hook('orders', 'orders'),
  })
  const w = await runWorker(db.url, dir)
  t.after(() => w.stop())
  assert.deepEqual(
    w.worker.current().observers.map((o) => o.name),
    ['orders'],
  )
  const problems = w.worker
    .current()
    .problems.map((p) => [p.code, p.file.replace(/^.*\//, ''), p.path])
    .sort()
  assert.deepEqual(problems, [
    ['OB001', 'jobs.json', '/entity'],
    ['OB001', 'ledger.json', '/entity'],
    ['OB001', 'log.json', '/entity'],
  ])
  const { rows } = await db.pool.query(
    `select entity from observers.watched where entity like 'observers.%' or entity like 'pgboss.%'`,
  )
  assert.deepEqual(rows, [], "no trigger on the product's own tables")
  await db.pool.query('insert into orders values (4)')
  await eventually(
    () => receiver.requests.some((r) => r.body === 'public.orders 4'),
    20_000,
    'the orders delivery',
  )
})

test("`observers watch` on the product's own tables exits 2 with OB001, and so does observers.watch()", async () => {
  for (const table of ['observers.change_log', 'pgboss.job']) {
    const { code, output } = await cli(['watch', table])
    assert.equal(code, 2, output)
    assert.match(output, /OB001: .*pg-observers itself/)
  }
  await assert.rejects(
    db.pool.query(`select observers.watch('observers.change_log')`),
    /belongs to pg-observers itself/,
  )
  await db.pool.query('insert into orders values (5)')
  const { rows } =
    await db.pool.query(`select count(*)::int as n from pg_trigger where tgname = 'observers_capture'
    and tgrelid in ('observers.change_log'::regclass, 'pgboss.job'::regclass)`)
  assert.equal(rows[0].n, 0)
})
