import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { createTestDatabase } from './helpers/db.ts'
import { eventually, runWorker } from './helpers/worker.ts'
import { api } from './ops/helpers.ts'

const root = path.resolve(import.meta.dirname, '..')

test('on your own database with the default observers folder, the worker is ready and reloads apply', async (t) => {
  const db = await createTestDatabase()
  t.after(() => db.drop())
  // The README's default, ./observers of a fresh clone.
  const { worker, stop } = await runWorker(db.url, path.join(root, 'observers'))
  t.after(stop)
  assert.deepEqual(
    worker.current().problems.map((p) => p.message),
    [],
    'the sample observer is not loaded without the embedded database',
  )
  assert.ok(!worker.current().observers.some((o) => o.name === 'demo-order-shipped'))
  await eventually(async () => (await api(worker, '/readyz')).status === 200, 20_000, '/readyz 200')
  const reloaded = await worker.reload()
  assert.equal(reloaded.applied, true, 'a reload of the default folder applies')
})
