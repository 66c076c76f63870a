import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Cluster, startCluster } from '../helpers/cluster.ts'
import { type CountingReceiver, startCountingReceiver } from '../helpers/counting-receiver.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { eventually } from '../helpers/worker.ts'

const rows = 80
let db: TestDatabase
let receiver: CountingReceiver
let cluster: Cluster | undefined

before(async () => {
  db = await createTestDatabase('create table tasks (id int primary key)')
  // Watched up front: four workers starting at once would each try to attach the trigger.
  await db.pool.query(`select observers.watch('tasks')`)
  receiver = await startCountingReceiver(120)
  const observer = (name: string, action: Record<string, unknown>) => ({
    name,
    entity: 'tasks',
    events: ['INSERT'],
    actions: [
      { type: 'webhook', url: `${receiver.url}/${name}`, body_template: { id: '{{ id }}' }, ...action },
    ],
  })
  cluster = await startCluster(
    db.url,
    { 'limited.json': observer('limited', { max_concurrency: 3 }), 'open.json': observer('open', {}) },
    4,
    { OBSERVERS_CONCURRENCY: '8' },
  )
})

after(async () => {
  await cluster?.stop()
  await receiver?.close()
  await db?.drop()
})

function delivered(path: string): number[] {
  const ids = receiver.arrivals
    .filter((a) => a.path === path)
    .map((a) => (JSON.parse(a.body) as { id: number }).id)
  return [...new Set(ids)].sort((a, b) => a - b)
}

test('max_concurrency 3 holds across 4 worker processes, and every delivery arrives', async () => {
  // Several transactions, so several dispatches wake all four workers at once.
  for (let i = 0; i < rows; i += 10) {
    await db.pool.query('insert into tasks select generate_series($1::int, $2::int)', [i + 1, i + 10])
  }
  const all = Array.from({ length: rows }, (_, i) => i + 1)
  await eventually(
    () => delivered('/limited').length === rows && delivered('/open').length === rows,
    120_000,
    'all deliveries',
  )
  assert.deepEqual(delivered('/limited'), all)
  assert.deepEqual(delivered('/open'), all)
  const open = receiver.peak.get('/open') ?? 0
  const limited = receiver.peak.get('/limited') ?? 0
  assert.ok(open > 3, `without a limit, the workers overlap (peak ${open})`)
  assert.ok(limited <= 3, `at most 3 requests open at once (peak ${limited})`)
  console.log(`max open requests: limited ${limited}, unlimited ${open}`)
})
