import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startBacklogHistory } from '../../src/ops/backlog-history.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { eventually } from '../helpers/worker.ts'

let db: TestDatabase

before(async () => {
  db = await createTestDatabase()
})

after(async () => {
  await db?.drop()
})

test('workers share one sample per bucket, kept across restarts, older than a day pruned', async () => {
  await db.pool.query(
    `insert into observers.backlog_samples values (now() - interval '2 days', 9, 9), (now() - interval '30 minutes', 4, 40)`,
  )
  await db.pool.query(
    `with change as (
       insert into observers.change_log (event, entity, entity_id, after, created_at)
       values ('INSERT', 'public.nowhere', '1', '{}', now() - interval '90 seconds') returning seq)
     insert into observers.change_pending (seq) select seq from change`,
  )
  // Two workers sampling the same database, one bucket a second.
  const a = startBacklogHistory(db.pool, 1000)
  const b = startBacklogHistory(db.pool, 1000)
  const samples = await eventually(async () => {
    const s = await a.samples()
    return s.length >= 4 ? s : undefined
  })
  a.stop()
  b.stop()
  const times = samples.map((s) => s.at)
  assert.equal(new Set(times).size, times.length, 'one sample per bucket however many workers')
  assert.deepEqual(times, [...times].sort(), 'oldest first')
  assert.deepEqual(samples[0], { at: samples[0]!.at, backlog: 4, oldest_seconds: 40 }, 'an earlier sample')
  const now = samples.at(-1)!
  assert.equal(now.backlog, 1)
  assert.ok(now.oldest_seconds >= 90, `oldest ${now.oldest_seconds} s`)
  const { rows } = await db.pool.query(
    `select count(*)::int as n from observers.backlog_samples where at < now() - interval '1 day'`,
  )
  assert.equal(rows[0].n, 0, 'samples older than a day are pruned')

  const restarted = startBacklogHistory(db.pool, 1000)
  const kept = await restarted.samples()
  restarted.stop()
  assert.ok(kept.length >= samples.length, 'a new process reads what the others wrote')
})
