import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'

let db: TestDatabase

before(async () => {
  db = await createTestDatabase()
})

after(async () => {
  await db?.drop()
})

type Slot = { grant_id: string | null; wait_until: Date | null; now: Date }

async function take(key: string, limit: number, periodMs = 1000, holdMs = 15_000): Promise<Slot> {
  const { rows } = await db.pool.query<Slot>(
    'select s.*, now() as now from observers.take_rate_slot($1, $2, $3, $4) s',
    [key, limit, periodMs, holdMs],
  )
  return rows[0] as Slot
}

test('a key lets `limit` deliveries go per period; the next waits for a slot, counted from when they end', async () => {
  const first = await take('webhook:a', 2)
  const second = await take('webhook:a', 2)
  assert.ok(first.grant_id && second.grant_id)
  const third = await take('webhook:a', 2)
  assert.equal(third.grant_id, null, 'both still count while they run')
  // Running requests are taken to end now: the third tries again a period from now.
  assert.equal((third.wait_until as Date).getTime() - third.now.getTime(), 1000)
  await db.pool.query('select observers.end_rate_grant($1)', [first.grant_id])
  assert.equal((await take('webhook:a', 2)).grant_id, null, 'an ended request counts for one more period')
  await db.pool.query(
    `update observers.rate_grants set ends_at = now() - interval '1 second' where id = $1`,
    [first.grant_id],
  )
  assert.ok((await take('webhook:a', 2)).grant_id, 'a period after it ended, its slot is free')
  assert.ok((await take('webhook:b', 2)).grant_id, 'other keys are not affected')
})

test('waiting deliveries are spread one slot apart', async () => {
  for (let i = 0; i < 4; i++) assert.ok((await take('webhook:spread', 4)).grant_id)
  const a = await take('webhook:spread', 4)
  const b = await take('webhook:spread', 4)
  const gap = (b.wait_until as Date).getTime() - (a.wait_until as Date).getTime()
  assert.equal(gap, 250, 'period / limit apart')
})

test('a blocked key lets nothing go until its time', async () => {
  await db.pool.query(`select observers.block_destination('webhook:blocked', now() + interval '1 hour')`)
  const slot = await take('webhook:blocked', 100)
  assert.equal(slot.grant_id, null)
  assert.ok((slot.wait_until as Date).getTime() >= slot.now.getTime() + 3_599_000)
  await db.pool.query(`select observers.block_destination('webhook:blocked', now() + interval '1 minute')`)
  const { rows } = await db.pool.query(
    `select blocked_until > now() + interval '50 minutes' as later from observers.rate_limits where key = 'webhook:blocked'`,
  )
  assert.equal(rows[0]?.later, true, 'a block only ever moves later')
})
