import assert from 'node:assert/strict'
import { beforeEach, test } from 'node:test'
import { withTransaction } from '../../src/db/pool.ts'
import { statements } from '../../src/db/statements.ts'
import { groupTiers, type Queue, queueName } from '../../src/queue/boss.ts'
import { holdPaused, markFinalAttempt, orderedWalk, scheduleRetry } from '../../src/queue/pgboss-sql.ts'
import { fetchOrderedJobs } from '../../src/queue/runner.ts'
import { bossWouldTake, queueFixture } from '../helpers/queue.ts'

// fetchOrdered against the pinned pg-boss: it takes what pg-boss's strict-FIFO fetch takes.

const queue = queueName('webhook', 'ordered')
const run = statements(true)
const fixture = queueFixture()
/** pg-boss, counting the fetches fetchOrderedJobs leaves to it. */
let bossFetches = 0
const countingBoss = {
  fetch: (...args: Parameters<Queue['fetch']>) => {
    bossFetches++
    return fixture.boss.fetch(...args)
  },
} as unknown as Queue

beforeEach(async () => {
  await fixture.db.pool.query('delete from pgboss.job where name = $1', [queue])
})

/** Inserts one job per name, in order, each with its own created_on; returns name → id. */
async function insert(names: string[], group?: { id: string; tier: string }) {
  const ids = new Map<string, string>()
  for (const name of names) {
    const key = name.replace(/\d+$/, '')
    const data = { observer: 'held', action_index: 0, name, attempts: [] }
    const [id] =
      (await fixture.boss.insert(
        queue,
        [{ data, singletonKey: key, retryLimit: 3, ...(group ? { group } : {}) }],
        {
          returnId: true,
        },
      )) ?? []
    assert.ok(id)
    ids.set(name, id)
  }
  return ids
}

type Fetched = { id: string; retryCount: number; data: { name: string } }

/**
 * Takes up to `batchSize` jobs with fetchOrdered, after checking pg-boss would take the same jobs
 * (as many, when `sameJobs` is false: pg-boss picks a group's jobs by their random ids).
 */
async function take(batchSize: number, sameJobs = true): Promise<Fetched[]> {
  const expected = await bossWouldTake(fixture, queue, batchSize, { default: 1_000_000, tiers: groupTiers })
  const rows = await withTransaction(fixture.db.pool, async (client) => {
    const jobs = await fetchOrderedJobs(countingBoss, run, client, queue, batchSize)
    return jobs as unknown as Fetched[]
  })
  const taken = rows.map((r) => r.data.name).sort()
  if (sameJobs) assert.deepEqual(taken, expected, 'pg-boss would take the same jobs')
  else assert.equal(taken.length, expected.length, 'pg-boss would take as many jobs')
  return rows
}

const names = (jobs: Fetched[]) => jobs.map((j) => j.data.name).sort()

async function state(id: string | undefined) {
  const { rows } = await fixture.db.pool.query(
    'select state, started_on from pgboss.job where name = $1 and id = $2',
    [queue, id],
  )
  return rows[0]
}

test('takes the oldest job of each key, one per key, and the next only once the first is done', async () => {
  const ids = await insert(['a1', 'b1', 'a2', 'c1', 'b2', 'a3'])
  const first = await take(10)
  assert.deepEqual(names(first), ['a1', 'b1', 'c1'])
  assert.ok(first.every((j) => j.retryCount === 0))
  assert.equal((await state(ids.get('a1'))).state, 'active', 'claimed as pg-boss claims')
  assert.ok((await state(ids.get('a1'))).started_on)
  assert.deepEqual(await take(10), [], 'every key is held by its active job')
  await fixture.boss.complete(queue, first.find((j) => j.data.name === 'a1') as Fetched)
  assert.deepEqual(names(await take(10)), ['a2'])
})

test('stops at the batch size, in fetch order', async () => {
  await insert(['a1', 'b1', 'c1', 'd1'])
  assert.deepEqual(names(await take(2)), ['a1', 'b1'])
  assert.deepEqual(names(await take(2)), ['c1', 'd1'])
})

test("a retry heads its key once due, counted as the next attempt, and holds the key's later jobs meanwhile", async () => {
  const ids = await insert(['a1', 'a2', 'b1'])
  const [a1] = await take(1)
  assert.equal(a1?.data.name, 'a1')
  const later = [queue, ids.get('a1'), 0, 60_000, JSON.stringify({ attempt: 1 }), 86_400]
  assert.equal((await run.run(fixture.db.pool, scheduleRetry, later)).rowCount, 1)
  assert.deepEqual(names(await take(10)), ['b1'], 'a2 waits behind the retry that is not due')
  await fixture.db.pool.query('update pgboss.job set start_after = now() where name = $1 and id = $2', [
    queue,
    ids.get('a1'),
  ])
  const again = await take(10)
  assert.deepEqual(names(again), ['a1'])
  assert.equal(again[0]?.retryCount, 1)
})

test("a failed job holds its key until it is gone, as a dead letter's source does", async () => {
  const ids = await insert(['a1', 'a2', 'b1', 'b2'])
  const first = await take(10)
  const a1 = first.find((j) => j.data.name === 'a1') as Fetched
  const final = [queue, a1.id, 0, true, JSON.stringify({ attempt: 1 })]
  assert.equal((await run.run(fixture.db.pool, markFinalAttempt, final)).rowCount, 1)
  await fixture.boss.fail(queue, a1, { error: 'final' })
  assert.equal((await state(ids.get('a1'))).state, 'failed')
  await fixture.boss.complete(queue, first.find((j) => j.data.name === 'b1') as Fetched)
  assert.deepEqual(names(await take(10)), ['b2'], 'a2 waits behind the failed a1')
  await fixture.db.pool.query('delete from pgboss.job where name = $1 and id = $2', [queue, ids.get('a1')])
  assert.deepEqual(names(await take(10)), ['a2'])
})

test("a job held for a pause holds its key's later jobs", async () => {
  await insert(['a1', 'a2', 'b1'])
  const [a1] = await take(1)
  await fixture.db.pool.query(`select observers.pause_observer('held')`)
  try {
    const hold = [queue, a1?.id, 0, ['held', 'held#0'], 86_400]
    assert.equal((await run.run(fixture.db.pool, holdPaused, hold)).rowCount, 1)
    assert.deepEqual(names(await take(10)), ['b1'])
  } finally {
    await fixture.db.pool.query(`select observers.resume_observer('held')`)
  }
})

test("a group runs no more jobs than its tier's limit, counting those already active", async () => {
  await insert(['a1', 'b1', 'c1', 'd1'], { id: 'webhook:dest', tier: 'c2' })
  await insert(['e1'])
  const first = await take(10, false)
  assert.deepEqual(names(first), ['a1', 'b1', 'e1'], 'the oldest of the group')
  assert.deepEqual(await take(10), [], 'both slots of the group are taken')
  await fixture.boss.complete(queue, first.find((j) => j.data.name === 'a1') as Fetched)
  assert.deepEqual(names(await take(10, false)), ['c1'])
})

test('only a walk stopped at its cap leaves the rest to pg-boss, which finds the key beyond it', async () => {
  bossFetches = 0
  await insert(['a1', 'b1'])
  assert.deepEqual(names(await take(10)), ['a1', 'b1'])
  assert.equal(bossFetches, 0, 'a short walk that reached the end of the queue')
  // A key with more jobs than one walk reads, ahead of another key's job.
  const held = Array.from({ length: orderedWalk + 1 }, () => ({
    data: { observer: 'held', action_index: 0, name: 'hot', attempts: [] },
    singletonKey: 'hot',
    retryLimit: 3,
  }))
  await fixture.boss.insert(queue, held)
  await insert(['z1'])
  // The walk takes the hot key's head, then reads only jobs it holds back, up to its cap.
  assert.deepEqual(names(await take(10)), ['hot', 'z1'], 'z1 found beyond the walk')
  assert.equal(bossFetches, 1)
})
