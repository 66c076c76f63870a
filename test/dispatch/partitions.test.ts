import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { after, before, test } from 'node:test'
import { freePort } from '../../src/db/embedded.ts'
import { lockKeys, partitionLockId } from '../../src/db/locks.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { sigkill, spawnCli, untilChild, waitUntilReady } from '../helpers/process.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir } from '../helpers/worker.ts'

const partitions = 6

let db: TestDatabase
let receiver: Receiver
let env: Record<string, string>
const workers = new Set<ChildProcess & { output: string[] }>()

before(async () => {
  db = await createTestDatabase('create table counters (id int primary key, n int not null)')
  await db.pool.query(`select observers.watch('counters')`)
  receiver = await startReceiver()
  // An occasional 503 reorders deliveries unless ordering holds them back.
  let count = 0
  receiver.reply(() => (++count % 7 === 0 ? { status: 503 } : { status: 200 }))
  const dir = await observersDir({
    'counters.json': {
      name: 'counters',
      entity: 'counters',
      events: ['INSERT', 'UPDATE'],
      ordering: 'entity',
      retry: { max_attempts: 50, initial_delay_ms: 50, backoff_strategy: 'fixed' },
      actions: [
        {
          type: 'webhook',
          url: receiver.url,
          // A killed worker's job expires and runs again elsewhere within seconds.
          timeout_ms: 1000,
          body_template: { id: '{{ after.id }}', n: '{{ after.n }}' },
        },
      ],
    },
  })
  env = {
    DATABASE_URL: db.url,
    OBSERVERS_DIR: dir,
    OBSERVERS_DISPATCH_PARTITIONS: String(partitions),
    OBSERVERS_DISPATCH_POLL_MS: '200',
    LOG_LEVEL: 'info',
  }
})

after(async () => {
  for (const w of workers) w.kill('SIGKILL')
  await receiver?.close()
  await db?.drop()
})

async function startWorker(extra: Record<string, string> = {}) {
  const port = String(await freePort())
  const child = spawnCli(['start'], { ...env, PORT: port, ...extra })
  workers.add(child)
  child.once('exit', () => workers.delete(child))
  await waitUntilReady(child, port)
  return child
}

async function kill(child: ChildProcess) {
  await sigkill(child)
  workers.delete(child as ChildProcess & { output: string[] })
}

/** For each partition lock held now, the server pids (listener sessions) holding it. */
async function leaders(): Promise<Map<number, number[]>> {
  const ids = Array.from({ length: partitions }, (_, p) => partitionLockId(partitions, p))
  const { rows } = await db.pool.query<{ objid: number; pids: number[] }>(
    `select objid::bigint::int as objid, array_agg(pid order by pid) as pids from pg_locks
      where locktype = 'advisory' and granted and objsubid = 2
        and database = (select oid from pg_database where datname = current_database())
        and classid::bigint = $1 and objid::bigint = any($2::bigint[])
      group by objid`,
    [lockKeys.partitionClass, ids],
  )
  return new Map(rows.map((r) => [ids.indexOf(r.objid), r.pids]))
}

/** Every partition has exactly one leader, and `processes` distinct sessions share them. */
async function sharedBy(processes: number): Promise<Map<number, number[]> | false> {
  const held = await leaders()
  if (held.size !== partitions || [...held.values()].some((pids) => pids.length !== 1)) return false
  const sessions = new Set([...held.values()].map((pids) => pids[0]))
  return sessions.size === processes ? held : false
}

/** Each row's values of n in the order the receiver got them; a retry repeats its own position. */
function receivedOrder(): Map<number, number[]> {
  const seen = new Map<number, number[]>()
  for (const r of receiver.requests) {
    const { id, n } = JSON.parse(r.body) as { id: number; n: number }
    const list = seen.get(id) ?? []
    if (list.at(-1) !== n) list.push(n)
    seen.set(id, list)
  }
  return seen
}

const distinctBodies = () => new Set(receiver.requests.map((r) => r.body)).size

test('several workers dispatch at once; each partition has exactly one leader; a killed leader is taken over', async () => {
  const [a, b, c] = [await startWorker(), await startWorker(), await startWorker()]
  const held = await untilChild(a, () => sharedBy(3), 'three workers sharing six partitions, one leader each')
  // Every partition lock is held on a listener connection, never on a pooled one.
  const { rows } = await db.pool.query<{ app: string }>(
    `select distinct application_name as app from pg_stat_activity where pid = any($1::int[])`,
    [[...held.values()].flat()],
  )
  assert.deepEqual(
    rows.map((r) => r.app),
    ['pg-observers-listener'],
  )

  await db.pool.query('insert into counters select g, 0 from generate_series(1, 40) g')
  await eventually(() => distinctBodies() >= 40, 60_000, 'the first 40 deliveries')

  await kill(b)
  const after = await untilChild(a, () => sharedBy(2), 'the two survivors leading all six partitions')
  const pidsBefore = new Set([...held.values()].flat())
  const pidsAfter = new Set([...after.values()].flat())
  assert.ok(
    [...pidsAfter].every((p) => pidsBefore.has(p)),
    'the survivors took over; no new session appeared',
  )
  await db.pool.query('update counters set n = 1')
  await eventually(() => distinctBodies() >= 80, 60_000, 'the 40 updates after the kill')
  const order = receivedOrder()
  assert.equal(order.size, 40)
  for (const [id, ns] of order) assert.deepEqual(ns, [0, 1], `row ${id}`)
  await kill(a)
  await kill(c)
})

test('order per row holds for an ordered observer under partitioned dispatch while leaders are killed and the partition count changes', async () => {
  receiver.requests.length = 0
  await db.pool.query('truncate counters')
  const rows = 30
  const updates = 24
  let survivors = [await startWorker(), await startWorker(), await startWorker()]
  await untilChild(survivors[0]!, () => sharedBy(3), 'three workers sharing the partitions')
  await db.pool.query('insert into counters select g, 0 from generate_series(1, $1::int) g', [rows])
  for (let n = 1; n <= updates; n++) {
    // Row by row in their own transactions, so rows of every partition interleave in the log.
    for (let id = 1; id <= rows; id++)
      await db.pool.query('update counters set n = $1 where id = $2', [n, id])
    if (n % 8 === 0) {
      // A leader dies mid-stream, its partitions pass on, and a worker with another partition
      // count joins, as in a rolling change of OBSERVERS_DISPATCH_PARTITIONS.
      const [dying, ...rest] = survivors
      await kill(dying!)
      survivors = [...rest, await startWorker({ OBSERVERS_DISPATCH_PARTITIONS: '4' })]
    }
  }
  const total = rows * (updates + 1)
  await eventually(() => distinctBodies() >= total, 180_000, `all ${total} deliveries`)
  const expected = Array.from({ length: updates + 1 }, (_, n) => n)
  const order = receivedOrder()
  assert.equal(order.size, rows)
  for (const [id, ns] of order) assert.deepEqual(ns, expected, `row ${id} in commit order`)
  for (const w of survivors) await kill(w)
})
