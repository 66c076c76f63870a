import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { runCliInProcess } from '../cli/helpers.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api } from '../ops/helpers.ts'

let db: TestDatabase
let receiver: Receiver
let worker: TestWorker
let env: Record<string, string>
let failing = true

const rows = 10
const idOf = (body: string) => (JSON.parse(body) as { after: { id: number } }).after.id

before(async () => {
  db = await createTestDatabase(
    'create table items (id int primary key); create table other (id int primary key)',
  )
  receiver = await startReceiver()
  // Half the window fails for good the first time: odd rows are refused (400, no retry).
  receiver.reply((r) => (failing && idOf(r.body) % 2 === 1 ? { status: 400 } : { status: 200 }))
  const dir = await observersDir({
    'half.json': {
      name: 'half',
      entity: 'items',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: `${receiver.url}/half` }],
      retry: { max_attempts: 1 },
    },
  })
  worker = await runWorker(db.url, dir)
  env = { DATABASE_URL: db.url, OBSERVERS_DIR: dir }
  await db.pool.query(`insert into items select g from generate_series(1, ${rows}) g`)
  await outcomes({ delivered: rows / 2, dead_lettered: rows / 2 })
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

/** Waits until the delivery record holds exactly these counts per outcome. */
async function outcomes(expected: Record<string, number>) {
  await eventually(
    async () => {
      const { rows: counts } = await db.pool.query<{ outcome: string; n: number }>(
        `select outcome, count(*)::int as n from observers.deliveries group by outcome`,
      )
      const got = Object.fromEntries(counts.map((c) => [c.outcome, c.n]))
      return JSON.stringify(got) === JSON.stringify(expected) ? got : undefined
    },
    60_000,
    `delivery record ${JSON.stringify(expected)}`,
  )
}

test('a dry run counts per destination what would go out and what was delivered, sending nothing', async () => {
  const res = await api(worker.worker, '/api/replay', {
    method: 'POST',
    body: { since: '1h', dry_run: true },
  })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.equal(res.body.dry_run, true)
  assert.deepEqual([res.body.changes, res.body.deliveries, res.body.already_delivered], [rows, 5, 5])
  assert.deepEqual(
    res.body.destinations.map((d: Record<string, unknown>) => [
      d.observer,
      d.type,
      d.deliveries,
      d.already_delivered,
    ]),
    [['half', 'webhook', 5, 5]],
  )
  const failed = await runCliInProcess(
    ['replay', '--since', '1h', '--outcome', 'failed', '--dry-run', '--json'],
    env,
  )
  assert.equal(failed.code, 0, failed.output)
  assert.equal(JSON.parse(failed.stdout).deliveries, 5)
  const elsewhere = await runCliInProcess(
    ['replay', '--since', '1h', '--entity', 'other', '--outcome', 'failed', '--dry-run', '--json'],
    env,
  )
  assert.deepEqual([JSON.parse(elsewhere.stdout).changes, JSON.parse(elsewhere.stdout).deliveries], [0, 0])
  assert.equal(receiver.requests.length, rows, 'a dry run sends nothing')
})

test('replaying a half-delivered window delivers exactly the missing half, as the dry run said', async () => {
  failing = false
  const preview = await runCliInProcess(['replay', '--since', '1h', '--dry-run', '--json'], env)
  assert.equal(preview.code, 0, preview.output)
  const res = await runCliInProcess(['replay', '--since', '1h', '--json'], env)
  assert.equal(res.code, 0, res.output)
  const sent = JSON.parse(res.stdout)
  assert.equal(sent.deliveries, JSON.parse(preview.stdout).deliveries)
  assert.equal(sent.already_delivered, 5)
  await outcomes({ delivered: rows })
  const replayed = receiver.requests.slice(rows).map((r) => idOf(r.body))
  assert.deepEqual(
    replayed.toSorted((a, b) => a - b),
    [1, 3, 5, 7, 9],
  )
  const human = await runCliInProcess(['replay', '--since', '1h', '--dry-run'], env)
  assert.match(human.stdout, /would send 0 delivery\(ies\); 10 already delivered would be skipped/)
})
