import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { withTransaction } from '../../src/db/pool.ts'
import { claimChanges, isClaimBusy, type PartitionScope } from '../../src/db/queries/change-log.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'

let db: TestDatabase
const limits = { rows: 1000, bytes: 2 ** 30, changeBytes: 2 ** 30 }

before(async () => {
  db = await createTestDatabase('create table items (id int primary key, n int not null)')
  await db.pool.query(`select observers.watch('items')`)
})

after(() => db?.drop())

/** 20 rows, each inserted and then updated twice, in row-interleaved order. */
async function captureChanges() {
  await db.pool.query('truncate items')
  await db.pool.query('insert into items select g, 0 from generate_series(1, 20) g')
  await db.pool.query('update items set n = 1')
  await db.pool.query('update items set n = 2')
}

const claim = (scope: PartitionScope) =>
  withTransaction(db.pool, (c) => claimChanges(c, limits, undefined, scope))

test('each partition claims only its rows: together they take every change once, a row never split', async () => {
  await captureChanges()
  const count = 4
  const partitionOf = new Map<string, number>()
  const claimed: number[] = []
  for (let p = 0; p < count; p++) {
    const { events } = await claim({ count, led: [p] })
    for (const e of events) {
      claimed.push(e.seq)
      assert.equal(partitionOf.get(e.entity_id) ?? p, p, `row ${e.entity_id} in one partition`)
      partitionOf.set(e.entity_id, p)
    }
  }
  assert.equal(claimed.length, 60, 'every change claimed')
  assert.equal(new Set(claimed).size, 60, 'no change claimed twice')
  assert.ok(new Set(partitionOf.values()).size > 1, 'rows spread over several partitions')
})

test('a claim meeting a change another claim holds gives up instead of taking a later change of its row', async () => {
  await captureChanges()
  // A worker with 2 partitions claims partition 0, one change per row at most, and has not committed.
  const holder = await db.pool.connect()
  let heldEvents: Array<{ seq: number }> = []
  try {
    await holder.query('begin')
    const held = await claimChanges(holder, { ...limits, rows: 5 }, undefined, { count: 2, led: [0] })
    assert.equal(held.events.length, 5)
    heldEvents = held.events
    // A worker already on 3 partitions leads partitions that include some of those rows.
    let busy = 0
    for (let p = 0; p < 3; p++) {
      try {
        const { events } = await claim({ count: 3, led: [p] })
        const heldRows = new Set(held.events.map((e) => e.entity_id))
        const overtaken = events.filter((e) => heldRows.has(e.entity_id))
        assert.deepEqual(overtaken, [], `partition ${p} of 3 took no later change of a row being claimed`)
      } catch (err) {
        assert.ok(isClaimBusy(err), `lock_not_available, not ${String(err)}`)
        busy++
      }
    }
    assert.ok(busy > 0, 'some claim met the held changes')
  } finally {
    await holder.query('rollback')
    holder.release()
  }
  // Rolled back, the held changes are claimed again, and the rows they belong to lost nothing.
  const { events } = await claim({ count: 1, led: [0] })
  const left = new Set(events.map((e) => e.seq))
  for (const e of heldEvents) assert.ok(left.has(e.seq), `change ${e.seq} claimed after the hand-back`)
})

test('a change queued without its hash gets one from the change log', async () => {
  await captureChanges()
  const { rows } = await db.pool.query<{ seq: string }>(
    `delete from observers.change_pending where seq = (select max(seq) from observers.change_pending) returning seq`,
  )
  const seq = rows[0]!.seq
  await db.pool.query('insert into observers.change_pending (seq, bytes) values ($1, 0)', [seq])
  const { rows: hashed } = await db.pool.query<{ same: boolean }>(
    `select p.key_hash = observers.change_key_hash(c.entity, c.entity_id) as same
       from observers.change_pending p join observers.change_log c using (seq) where seq = $1`,
    [seq],
  )
  assert.equal(hashed[0]?.same, true)
})
