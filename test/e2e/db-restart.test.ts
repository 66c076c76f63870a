import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createPool, type Pool } from '../../src/db/pool.ts'
import { type DurableReceiver, startDurableReceiver } from '../helpers/durable-receiver.ts'
import { type OwnedPostgres, ownPostgres } from '../helpers/embedded.ts'
import { audit, duplicateLine, full, readyz, reaped, writeChanges } from '../helpers/faults.ts'
import { listenPort } from '../helpers/ports.ts'
import { assertDrains, cliWorkerEnv, exited, spawnCli, trackedWebhook } from '../helpers/process.ts'
import { eventually } from '../helpers/worker.ts'

// The outage lasts until the worker has failed this many reconnections (backoff from 250 ms,
// doubling): about 2 s, or about 30 s for the full variant.
const failedReconnects = full ? 7 : 3
const total = full ? 3000 : 600

let pg: OwnedPostgres
let pool: Pool
let receiver: DurableReceiver
let env: Record<string, string>
let opsPort: number

before(async () => {
  pg = await ownPostgres()
  // As a deploy's release phase does: the worker itself runs no DDL against DATABASE_URL.
  const migrate = spawnCli(['migrate'], { DATABASE_URL: pg.url })
  assert.equal((await exited(migrate)).code, 0, migrate.output.join(''))
  pool = createPool(pg.url, { max: 2, name: 'faults-writer' })
  receiver = await startDurableReceiver()
  await pool.query('create table tickets (id int primary key, note text)')
  opsPort = await listenPort()
  const tickets = trackedWebhook({
    name: 'tickets',
    url: `${receiver.url}/tickets`,
    retry: { max_attempts: 30, initial_delay_ms: 200, max_delay_ms: 2000, backoff_strategy: 'exponential' },
    timeoutMs: 1000,
  })
  env = await cliWorkerEnv(pg.url, tickets, {
    PORT: String(opsPort),
    LOG_LEVEL: 'info',
    OBSERVERS_DISPATCH_POLL_MS: '200',
  })
})

after(async () => {
  await pool?.end()
  await receiver?.close()
  await pg?.destroy()
})

const terminateSql = `select array_agg(pid) as pids, count(pg_terminate_backend(pid))::int as n from pg_stat_activity
  where application_name like 'pg-observers%' and pid <> pg_backend_pid()`

async function untilReady(want: boolean, timeoutMs: number, what: string) {
  await eventually(async () => ((await readyz(opsPort)) === 200) === want, timeoutMs, what)
}

test('database restarts and killed connections mid-stream: the worker reconnects and loses nothing', async (t) => {
  const worker = reaped(spawnCli(['start'], env))
  t.after(() => void worker.kill('SIGKILL'))
  await untilReady(true, 120_000, '/readyz 200 after start')
  const writer = writeChanges(pool, 'tickets', total, full ? 26_000 : 9000)
  await eventually(() => receiver.distinct > 50, 30_000, 'deliveries under way')

  const { rows } = await pool.query<{ n: number; pids: number[] }>(terminateSql)
  assert.ok(rows[0]!.n >= 2, `killed the worker's connections (${rows[0]!.n}), listener included`)
  // /readyz may still say 200 before the worker notices; a new listener connection means it has.
  await eventually(
    async () => {
      const { rows: fresh } = await pool.query(
        `select 1 from pg_stat_activity where application_name = 'pg-observers-listener' and pid <> all($1::int[])`,
        [rows[0]!.pids],
      )
      return fresh.length > 0
    },
    60_000,
    'the listener reconnected',
  )
  await untilReady(true, 30_000, '/readyz 200 after connections were killed')

  const lost = () => worker.output.join('').match(/OB010: listener connection lost/g)?.length ?? 0
  await pg.stop()
  await untilReady(false, 15_000, '/readyz not ready while the database is down')
  const lostAtStop = lost()
  await eventually(
    () => lost() >= lostAtStop + failedReconnects,
    120_000,
    `${failedReconnects} failed reconnections while the database is down`,
  )
  assert.equal(worker.exitCode, null, `worker survives the outage:\n${worker.output.join('').slice(-4000)}`)
  assert.equal(await readyz(opsPort), 503, 'still not ready while the database is down')
  await pg.start()
  await untilReady(true, 60_000, '/readyz 200 after the database came back')

  await writer
  const { rows: counts } = await pool.query<{ n: number }>(
    `select count(*)::int as n from observers.change_log where entity = 'public.tickets'`,
  )
  const committed = counts[0]!.n
  await eventually(() => receiver.distinct >= committed, 90_000, `all ${committed} deliveries`)
  const result = await audit(pool, 'public.tickets', 'tickets', receiver.delivered())
  console.log(
    `database restarts survived: 1 (${failedReconnects} failed reconnections), changes: ${committed}`,
  )
  console.log(duplicateLine(result))
  assert.deepEqual(result.missing, [], 'no committed change is lost')
  assert.deepEqual(result.unexpected, [], 'nothing is delivered that did not commit')
  const { rows: dead } = await pool.query('select count(*)::int as n from observers.dlq')
  assert.equal(dead[0].n, 0, 'nothing was dead-lettered')
  assert.match(worker.output.join(''), /OB010/, 'the listener reported its lost connection')
  await assertDrains(worker)
})
