import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import pg from 'pg'
import { databaseUrl } from '../helpers/db.ts'
import { exited, spawnCli } from '../helpers/process.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { observersDir, runWorker, startError, type TestWorker } from '../helpers/worker.ts'

/**
 * A database created empty (not from the migrated template), migrated by `observers migrate` as
 * its owner, then worked by a role holding only the grants docs/database.md lists.
 */
const suffix = randomBytes(5).toString('hex')
const dbName = `observers_lp_${suffix}`
const blankName = `observers_blank_${suffix}`
const role = `observers_worker_${suffix}`

let ownerUrl: string
let receiver: Receiver
const workers: TestWorker[] = []

async function admin(sql: string, url = databaseUrl('postgres')): Promise<void> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    await c.query(sql)
  } finally {
    await c.end()
  }
}

function asRole(url: string, user: string): string {
  const u = new URL(url)
  u.username = user
  return u.toString()
}

/** The grants of docs/database.md ("A least-privilege worker role"), verbatim. */
function grants(database: string, worker: string): string {
  return `
    grant connect on database ${database} to ${worker};
    grant usage on schema observers, pgboss to ${worker};
    grant select, insert, update, delete on all tables in schema observers, pgboss to ${worker};
    grant usage, select, update on all sequences in schema observers, pgboss to ${worker};
    grant execute on all functions in schema observers, pgboss to ${worker};`
}

before(async () => {
  receiver = await startReceiver()
  await admin(`create database ${dbName}`)
  await admin(`create database ${blankName}`)
  await admin(`create role ${role} login`)
  ownerUrl = databaseUrl(dbName)
})

after(async () => {
  for (const w of workers) await w.stop().catch(() => {})
  await receiver?.close()
  await admin(`drop database if exists ${dbName} with (force)`)
  await admin(`drop database if exists ${blankName} with (force)`)
  await admin(`drop role if exists ${role}`)
})

test('a worker against an unmigrated database refuses, names `observers migrate`, and creates nothing', async () => {
  const url = databaseUrl(blankName)
  const dir = await observersDir({})
  const err = await startError(url, dir)
  assert.equal(err.code, 'OB009')
  assert.match(err.message, /^database schema is missing migrations 0001_change_log/)
  assert.match(err.message, /run `observers migrate`/)
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  const { rows } = await c.query(
    "select nspname from pg_namespace where nspname in ('observers', 'pgboss') order by 1",
  )
  await c.end()
  assert.deepEqual(rows, [], 'the worker ran no DDL')
})

test('`observers migrate` as owner, then a worker with only the documented grants delivers', async () => {
  const migrate = spawnCli(['migrate'], { DATABASE_URL: ownerUrl })
  const { code } = await exited(migrate)
  assert.equal(code, 0, migrate.output.join(''))
  assert.match(migrate.output.join(''), /applied: 0001_change_log\.sql/)

  await admin(
    `create table orders (id int primary key, status text not null);
     create table invoices (id int primary key);
     create table legacy (id int primary key);
     select observers.watch('public.orders');
     -- As watched before statement-level capture, by an owner that has not run migrate since.
     create trigger observers_capture after insert or update or delete on legacy
       for each row execute function observers.capture('', 'request.jwt.claim.sub', '', 'id');
     insert into observers.watched (entity, relid, key_columns) values ('public.legacy', 'legacy'::regclass, '{id}');
     ${grants(dbName, role)}`,
    ownerUrl,
  )
  const dir = await observersDir({
    'orders.json': {
      name: 'orders',
      entity: 'orders',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: `${receiver.url}/orders/{{ entity_id }}` }],
    },
    'legacy.json': {
      name: 'legacy',
      entity: 'legacy',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: `${receiver.url}/legacy/{{ entity_id }}` }],
    },
    'invoices.json': {
      name: 'invoices',
      entity: 'invoices',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: `${receiver.url}/invoices` }],
    },
  })
  const worker = await runWorker(asRole(ownerUrl, role), dir)
  workers.push(worker)

  // The table its owner did not watch is reported, with what to run; the watched one runs.
  const problems = worker.worker.current().problems
  assert.equal(problems.length, 1)
  assert.equal(problems[0]?.code, 'OB001')
  assert.match(
    problems[0]?.message ?? '',
    /cannot watch table "public.invoices": permission denied.*run `observers watch public.invoices` as the table.s owner/,
  )
  // A table it may not move to statement-level capture keeps its row-level trigger and runs.
  assert.deepEqual(
    worker.worker
      .current()
      .observers.map((o) => o.name)
      .sort(),
    ['legacy', 'orders'],
  )

  await admin(`insert into orders values (7, 'new'); insert into legacy values (8)`, ownerUrl)
  const received = await receiver.waitFor(2, 30_000)
  const req = received.find((r) => r.path.startsWith('/orders/'))
  assert.equal(req?.path, '/orders/7')
  assert.equal(JSON.parse(req?.body ?? '{}').after.status, 'new')
  assert.ok(
    received.some((r) => r.path === '/legacy/8'),
    'the row-level trigger still captures',
  )
  // pg-boss's maintenance (expiry, retention, archive) runs as this role too.
  await worker.worker.queue.supervise()
  const errors = worker.logs.records.filter((r) => r.level === 'error' && r.code !== 'OB001')
  assert.deepEqual(errors, [], 'no statement of the worker was refused')
})
