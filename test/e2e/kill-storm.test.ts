import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type DurableReceiver, startDurableReceiver } from '../helpers/durable-receiver.ts'
import { audit, doomedIdBase, duplicateLine, full, reaped, writeChanges } from '../helpers/faults.ts'
import {
  assertDrains,
  cliWorkerEnv,
  sigkill,
  spawnCli,
  trackedWebhook,
  untilChild,
  waitUntilReady,
} from '../helpers/process.ts'
import { changesSettled } from '../helpers/settled.ts'
import { eventually } from '../helpers/worker.ts'

const kills = full ? 24 : 6
const total = full ? 5000 : 1000

let db: TestDatabase
let receiver: DurableReceiver
let env: Record<string, string>

before(async () => {
  db = await createTestDatabase('create table ledger (id int primary key, note text)')
  // Latency keeps each delivery open long enough to be seen in flight.
  receiver = await startDurableReceiver({ latencyMs: 200 })
  // Watched up front: the writer starts before the first worker would watch it.
  await db.pool.query(`select observers.watch('ledger')`)
  const ledger = trackedWebhook({
    name: 'ledger',
    url: `${receiver.url}/ledger`,
    retry: { max_attempts: 50, initial_delay_ms: 100, max_delay_ms: 1000, backoff_strategy: 'fixed' },
    // A killed worker's job expires after ceil(1000/1000)+5 s and runs again elsewhere.
    timeoutMs: 1000,
  })
  env = await cliWorkerEnv(db.url, ledger, {
    LOG_LEVEL: 'warn',
    OBSERVERS_DISPATCH_POLL_MS: '200',
    OBSERVERS_DISPATCH_BATCH_SIZE: '50',
  })
})

after(async () => {
  await receiver?.close()
  await db?.drop()
})

// Rows of changes written for one kill each; below doomedIdBase, apart from the writer's.
const baitIdBase = 9_000_000

/** Points of a worker's start where every third kill lands, in turn: the output that marks each. */
const startStages = [
  { stage: 'its first log line', output: /\S/ },
  { stage: 'its listener connected', output: /listening for changes/ },
  { stage: 'spawned', output: undefined },
]

/**
 * Starts and SIGKILLs `kills` workers in turn. Every third dies during its start, at one of
 * `startStages`; the others once the receiver holds one of their requests open, so each of those
 * kills lands while a delivery is in flight. A row written per kill gives each worker something to deliver
 * even after the writer is done.
 */
async function storm(): Promise<number> {
  let baits = 0
  for (let k = 0; k < kills; k++) {
    await eventually(() => receiver.open === 0, 30_000, "the killed worker's requests closed")
    if (k % 3 === 2) {
      const { stage, output } = startStages[((k - 2) / 3) % startStages.length]!
      const worker = reaped(spawnCli(['start'], { ...env, LOG_LEVEL: 'info' }))
      if (output)
        await untilChild(worker, async () => output.test(worker.output.join('')), `worker ${k}: ${stage}`)
      assert.equal(worker.exitCode, null, `worker ${k} ran until its kill:\n${worker.output.join('')}`)
      await sigkill(worker)
      continue
    }
    const worker = reaped(spawnCli(['start'], env))
    await db.pool.query(`insert into ledger values ($1, 'bait')`, [baitIdBase + baits++])
    // No await between this check and the kill: the receiver cannot answer in between.
    await untilChild(worker, async () => receiver.open > 0, `worker ${k} delivering`)
    assert.equal(worker.exitCode, null, `worker ${k} ran until its kill:\n${worker.output.join('')}`)
    await sigkill(worker)
  }
  return baits
}

/** Every committed change delivered, under one delivery id per row; nothing else delivered. */
async function assertNothingLost(committed: number) {
  const result = await audit(db.pool, 'public.ledger', 'ledger', receiver.delivered())
  const { rows } = await db.pool.query<{ n: number }>(
    `select count(*)::int as n from pgboss.job where name like 'observers.webhook%' and retry_count > 0`,
  )
  const rerun = rows[0]!.n
  console.log(`kills survived: ${kills}, changes: ${committed}, jobs run again after a kill: ${rerun}`)
  console.log(duplicateLine(result))
  assert.ok(rerun > 0, 'the kills interrupted deliveries in flight, which then ran again')
  assert.deepEqual(result.missing, [], 'no committed change is lost')
  assert.deepEqual(result.unexpected, [], 'nothing is delivered that did not commit')
  assert.deepEqual(result.rowsWithSeveralIds, [], 'a row is only ever delivered under one delivery id')
  const rolledBack = receiver
    .delivered()
    .filter((r) => Number((JSON.parse(r.body) as { entity_id: string }).entity_id) >= doomedIdBase)
  assert.equal(rolledBack.length, 0, 'no delivery for a rolled-back transaction')
  const { rows: dead } = await db.pool.query('select count(*)::int as n from observers.dlq')
  assert.equal(dead[0].n, 0, 'nothing was dead-lettered')
}

test(`kill -9 storm: ${kills} SIGKILLs while ${total} changes flow lose nothing and deliver no rollback`, async (t) => {
  const writer = writeChanges(db.pool, 'ledger', total, kills * 2500)
  const baits = await storm()
  const survivor = reaped(spawnCli(['start'], { ...env, LOG_LEVEL: 'info' }))
  t.after(() => void survivor.kill('SIGKILL'))
  await waitUntilReady(survivor, env.PORT!)
  await writer
  const committed = total + baits
  const { rows } = await db.pool.query<{ changes: number; rows: number }>(
    `select count(*)::int as changes, (select count(*)::int from ledger) as rows
       from observers.change_log where entity = 'public.ledger'`,
  )
  assert.equal(rows[0]!.rows, committed, 'every batch the writer meant to commit committed')
  assert.equal(rows[0]!.changes, committed, 'every committed insert was captured')
  await eventually(() => receiver.distinct >= committed, 120_000, `all ${committed} deliveries`)
  await changesSettled(db.pool, 'public.ledger')
  await assertNothingLost(committed)
  await assertDrains(survivor)
})
