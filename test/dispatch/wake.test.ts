import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import pg from 'pg'
import { lockKeys } from '../../src/db/locks.ts'
import type { TestDatabase } from '../helpers/db.ts'
import { type EventsFixture, eventsFixture } from '../helpers/events.ts'
import type { Receiver } from '../helpers/receiver.ts'
import { eventually, runWorker } from '../helpers/worker.ts'

// The dispatcher's poll is ten minutes here, so a change is delivered within a test's timeout
// only if a NOTIFY or the dispatcher's own awake polling found it.
const noPoll = { OBSERVERS_DISPATCH_POLL_MS: '600000' }
// migrations/0004_dispatch_queue.sql names the same key.
const sleepLockKey = String(lockKeys.sleep)

let fixture: EventsFixture
let db: TestDatabase
let receiver: Receiver
let dir: string

before(async () => {
  fixture = await eventsFixture()
  ;({ db, receiver, dir } = fixture)
  // Watches the table, so the capture trigger exists before any worker of these tests runs.
  await (await runWorker(db.url, dir)).stop()
})

after(() => fixture?.close())

const delivered = () => receiver.requests.map((r) => JSON.parse(r.body).after.id as number)

async function waitForId(id: number, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs
  while (!delivered().includes(id)) {
    if (Date.now() > deadline) throw new Error(`change ${id} not delivered within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Inserts `id` in a transaction left open; tells whether it skipped its NOTIFY (holds the lock shared). */
async function openInsert(id: number): Promise<{ client: pg.Client; skipped: boolean }> {
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  await client.query('begin')
  await client.query(`insert into events values ($1, 'open')`, [id])
  const { rows } = await client.query<{ skipped: boolean }>(
    `select exists (select 1 from pg_locks
                     where pid = pg_backend_pid() and locktype = 'advisory' and mode = 'ShareLock' and granted
                       and classid::bigint = ($1::bigint >> 32) and objid::bigint = ($1::bigint & 4294967295)) as skipped`,
    [sleepLockKey],
  )
  return { client, skipped: rows[0]?.skipped === true }
}

/** Whether a session holds the sleep lock exclusively: the dispatcher has caught up and sleeps. */
async function dispatcherAsleep(): Promise<boolean> {
  const { rows } = await db.pool.query<{ asleep: boolean }>(
    `select exists (select 1 from pg_locks
                     where locktype = 'advisory' and mode = 'ExclusiveLock' and granted
                       and classid::bigint = ($1::bigint >> 32) and objid::bigint = ($1::bigint & 4294967295)) as asleep`,
    [sleepLockKey],
  )
  return rows[0]?.asleep === true
}

/** One change through the pipeline, then until the dispatcher, caught up, holds the sleep lock. */
async function warmUp(id: number) {
  await db.pool.query(`insert into events values ($1, 'warm-up')`, [id])
  await waitForId(id)
  await eventually(dispatcherAsleep, 30_000, 'the dispatcher asleep (sleep lock held)')
}

test('with no worker running, commits send no NOTIFY', async () => {
  const listener = new pg.Client({ connectionString: db.url })
  await listener.connect()
  const payloads: string[] = []
  listener.on('notification', (n) => payloads.push(n.payload ?? ''))
  await listener.query('listen observers_change_log')
  try {
    await db.pool.query(`insert into events values (1, 'unwatched moment')`)
    // Notifications arrive in commit order: once the marker is here, the insert's would be too.
    await db.pool.query(`select pg_notify('observers_change_log', 'marker')`)
    while (payloads.length === 0) await new Promise((r) => setTimeout(r, 20))
    assert.deepEqual(payloads, ['marker'])
  } finally {
    await listener.end()
  }
})

test('a sleeping dispatcher is woken by the NOTIFY of a commit', async () => {
  const worker = await runWorker(db.url, dir, noPoll)
  try {
    await warmUp(10)
    // The dispatcher may wake between the check and the insert (a leadership check on a loaded
    // machine): an insert that found it awake is rolled back and made again once it sleeps.
    const open = await eventually(
      async () => {
        await eventually(dispatcherAsleep, 30_000, 'the dispatcher asleep (sleep lock held)')
        const tried = await openInsert(11)
        if (!tried.skipped) return tried
        await tried.client.query('rollback')
        await tried.client.end()
        return undefined
      },
      60_000,
      'an insert that notifies, made while the dispatcher sleeps',
    )
    await open.client.query('commit')
    await open.client.end()
    await waitForId(11)
  } finally {
    await worker.stop()
  }
})

test('a change whose transaction skipped its NOTIFY while the dispatcher was awake is still delivered', async () => {
  const worker = await runWorker(db.url, dir, noPoll)
  // Holds the sleep lock shared, as a capturing transaction does, once the dispatcher is awake:
  // it cannot go back to sleep, so a transaction opened now skips its NOTIFY whatever the timing.
  const pin = new pg.Client({ connectionString: db.url })
  await pin.connect()
  try {
    await warmUp(20)
    let wakeId = 1000
    await eventually(
      async () => {
        // A commit of a batch wakes the sleeping dispatcher and keeps it awake (polling) while it
        // catches up; tries in a tight loop land in that window.
        await db.pool.query(
          `insert into events select g, 'wake' from generate_series($1::int, $1::int + 19) g`,
          [wakeId],
        )
        wakeId += 20
        for (let i = 0; i < 500; i++) {
          const { rows } = await pin.query<{ pinned: boolean }>(
            'select pg_try_advisory_lock_shared($1::bigint) as pinned',
            [sleepLockKey],
          )
          if (rows[0]?.pinned) return true
        }
        return false
      },
      60_000,
      'the sleep lock taken shared while the dispatcher is awake',
    )
    const open = await openInsert(1999)
    assert.equal(open.skipped, true, 'the transaction skipped its NOTIFY: the dispatcher was awake')
    await pin.query('select pg_advisory_unlock_shared($1::bigint)', [sleepLockKey])
    await open.client.query('commit')
    await open.client.end()
    for (let id = 1000; id < wakeId; id++) await waitForId(id)
    await waitForId(1999)
    const ids = delivered()
    assert.equal(ids.length, new Set(ids).size, 'each change delivered once')
  } finally {
    await pin.end()
    await worker.stop()
  }
})
