import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type DurableReceiver, startDurableReceiver } from '../helpers/durable-receiver.ts'
import {
  assertDrains,
  cliWorkerEnv,
  sigkill,
  spawnCli,
  trackedWebhook,
  waitForOutput,
} from '../helpers/process.ts'
import { eventually } from '../helpers/worker.ts'
import { audit, doomedIdBase, duplicateLine, full, randomBetween, reaped, writeChanges } from './support.ts'

const kills = full ? 24 : 6
const total = full ? 5000 : 1000

let db: TestDatabase
let receiver: DurableReceiver
let env: Record<string, string>

before(async () => {
  db = await createTestDatabase('create table ledger (id int primary key, note text)')
  // Latency keeps deliveries in flight at the moment of each kill.
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

/** Waits until this worker has delivered something (or 8 s pass), then `ms` more. */
async function deliveringFor(ms: number) {
  const before = receiver.distinct
  const deadline = Date.now() + 8000
  while (receiver.distinct < before + 10 && Date.now() < deadline) await delay(50)
  await delay(ms)
}

/** Starts and SIGKILLs `kills` workers in turn; every third dies during startup. */
async function storm() {
  for (let k = 0; k < kills; k++) {
    const worker = reaped(spawnCli(['start'], env))
    if (k % 3 === 2) await delay(randomBetween(300, 1500))
    else await deliveringFor(randomBetween(100, 1500))
    assert.equal(worker.exitCode, null, `worker ${k} ran until its kill:\n${worker.output.join('')}`)
    await sigkill(worker)
  }
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
  // Paced to outlast the storm, so most kills land while deliveries are in flight.
  const writer = writeChanges(db.pool, 'ledger', total, kills * 2500)
  await storm()
  const survivor = reaped(spawnCli(['start'], { ...env, LOG_LEVEL: 'info' }))
  t.after(() => void survivor.kill('SIGKILL'))
  await waitForOutput(survivor, /loaded 1 observer/, 60_000)
  await writer
  const { rows } = await db.pool.query<{ changes: number; rows: number }>(
    `select count(*)::int as changes, (select count(*)::int from ledger) as rows
       from observers.change_log where entity = 'public.ledger'`,
  )
  assert.equal(rows[0]!.rows, total, 'every batch the writer meant to commit committed')
  assert.equal(rows[0]!.changes, total, 'every committed insert was captured')
  await eventually(() => receiver.distinct >= total, 120_000, `all ${total} deliveries`)
  await delay(1000)
  await assertNothingLost(total)
  await assertDrains(survivor)
})
