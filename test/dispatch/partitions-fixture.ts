import type { ChildProcess } from 'node:child_process'
import { lockKeys, partitionLockId } from '../../src/db/locks.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { reaped } from '../helpers/faults.ts'
import { listenPort } from '../helpers/ports.ts'
import { sigkill, spawnCli, waitUntilReady } from '../helpers/process.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { observersDir } from '../helpers/worker.ts'

type Child = ChildProcess & { output: string[] }

/**
 * A database with `counters (id, n)` watched, an ordered webhook observer on it whose body is
 * `{ id, n }`, a real receiver that answers every seventh request 503 (which reorders deliveries
 * unless ordering holds them back), and worker processes sharing `partitions` dispatch partitions.
 */
export async function partitionsFixture(partitions: number) {
  const db: TestDatabase = await createTestDatabase(
    'create table counters (id int primary key, n int not null)',
  )
  await db.pool.query(`select observers.watch('counters')`)
  const receiver: Receiver = await startReceiver()
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
  const env = {
    DATABASE_URL: db.url,
    OBSERVERS_DIR: dir,
    OBSERVERS_DISPATCH_PARTITIONS: String(partitions),
    OBSERVERS_DISPATCH_POLL_MS: '200',
    // Several workers at once on a server other suites share: few connections each.
    OBSERVERS_DB_POOL_SIZE: '2',
    LOG_LEVEL: 'info',
  }
  const workers = new Set<Child>()

  /** For each partition lock held now, the server pids (listener sessions) holding it. */
  const leaders = async (): Promise<Map<number, number[]>> => {
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

  return {
    db,
    receiver,
    async startWorker(extra: Record<string, string> = {}): Promise<Child> {
      const port = String(await listenPort())
      const child = reaped(spawnCli(['start'], { ...env, PORT: port, ...extra }))
      workers.add(child)
      child.once('exit', () => workers.delete(child))
      await waitUntilReady(child, port)
      return child
    },
    async kill(child: ChildProcess) {
      await sigkill(child)
    },
    /** Every partition has exactly one leader, and `processes` distinct sessions share them. */
    async sharedBy(processes: number): Promise<Map<number, number[]> | false> {
      const held = await leaders()
      if (held.size !== partitions || [...held.values()].some((pids) => pids.length !== 1)) return false
      const sessions = new Set([...held.values()].map((pids) => pids[0]))
      return sessions.size === processes ? held : false
    },
    /** Each row's values of n in the order the receiver got them; a retry repeats its own position. */
    receivedOrder(): Map<number, number[]> {
      const seen = new Map<number, number[]>()
      for (const r of receiver.requests) {
        const { id, n } = JSON.parse(r.body) as { id: number; n: number }
        const list = seen.get(id) ?? []
        if (list.at(-1) !== n) list.push(n)
        seen.set(id, list)
      }
      return seen
    },
    distinctBodies: () => new Set(receiver.requests.map((r) => r.body)).size,
    async close() {
      for (const w of workers) w.kill('SIGKILL')
      await receiver.close()
      await db.drop()
    },
  }
}

export type PartitionsFixture = Awaited<ReturnType<typeof partitionsFixture>>
