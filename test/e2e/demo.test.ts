import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { createDemoTable, fireDemo } from '../../src/demo/demo.ts'
import { createTestDatabase } from '../helpers/db.ts'
import { eventually, startWorkerWithDatabase } from '../helpers/worker.ts'
import { api } from '../ops/helpers.ts'

const root = path.resolve(import.meta.dirname, '../..')

test('on your own database with the default observers folder, the worker is ready and reloads apply', async (t) => {
  // The README's default, ./observers of a fresh clone.
  const { db, worker } = await startWorkerWithDatabase('', path.join(root, 'observers'))
  t.after(async () => {
    await worker.stop()
    await db.drop()
  })
  assert.deepEqual(
    worker.worker.current().problems.map((p) => p.message),
    [],
    'the sample observer is not loaded without the embedded database',
  )
  assert.ok(!worker.worker.current().observers.some((o) => o.name === 'demo-order-shipped'))
  await eventually(async () => (await api(worker.worker, '/readyz')).status === 200, 20_000, '/readyz 200')
  const reloaded = await worker.worker.reload()
  assert.equal(reloaded.applied, true, 'a reload of the default folder applies')
})

test('every start inserts the same demo order, and new orders get other ids', async (t) => {
  const db = await createTestDatabase()
  t.after(() => db.drop())
  for (let start = 0; start < 2; start++) {
    await createDemoTable(db.pool)
    await fireDemo(db.pool)
  }
  const demo = await db.pool.query<{ id: number; customer_email: string; total: string }>(
    'select id, customer_email, total::text from demo_orders',
  )
  assert.deepEqual(demo.rows, [{ id: 1, customer_email: 'ada@example.com', total: '129.90' }])
  const next = await db.pool.query<{ id: number }>(
    "insert into demo_orders (customer_email, total, status) values ('you@example.com', 42, 'shipped') returning id",
  )
  assert.equal(next.rows[0]?.id, 2, "the README's psql insert does not collide with the demo order")
})
