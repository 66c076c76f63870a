import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { beforeEach, test } from 'node:test'
import { withTransaction } from '../../src/db/pool.ts'
import { statements } from '../../src/db/statements.ts'
import { activeJob, enqueue, insertActive, type QueuedDelivery, queueName } from '../../src/queue/boss.ts'
import { fetchPlain, scheduleRetry } from '../../src/queue/pgboss-sql.ts'
import { bossWouldTake, queueFixture } from '../helpers/queue.ts'

// observers.fetch_plain (migrations/0020) against the pinned pg-boss: it takes what pg-boss's
// standard fetch takes, and its plan, kept per connection, walks the index in fetch order;
// insertActive writes the row pg-boss's insert and fetch would leave.

const queue = queueName('webhook', 'plain')
const run = statements(true)
const fixture = queueFixture()

beforeEach(async () => {
  await fixture.db.pool.query('delete from pgboss.job where name = $1', [queue])
})

type Fetched = { id: string; retryCount: number; data: { name: string } }

/** Inserts one job per name, in order; `priority` and `startAfter` (seconds) per name when given. */
async function insert(
  names: string[],
  opts: Record<string, { priority?: number; startAfter?: number }> = {},
) {
  const ids = new Map<string, string>()
  for (const name of names) {
    const o = opts[name] ?? {}
    const [id] =
      (await fixture.boss.insert(
        queue,
        [
          {
            data: { name, attempts: [] },
            retryLimit: 3,
            ...(o.priority === undefined ? {} : { priority: o.priority }),
            ...(o.startAfter === undefined ? {} : { startAfter: o.startAfter }),
          },
        ],
        { returnId: true },
      )) ?? []
    assert.ok(id)
    ids.set(name, id)
  }
  return ids
}

/** Takes up to `batchSize` jobs with fetchPlain, after checking pg-boss would take the same. */
async function take(batchSize: number): Promise<Fetched[]> {
  const expected = await bossWouldTake(fixture, queue, batchSize)
  const { rows } = await run.run(fixture.db.pool, fetchPlain, [queue, batchSize])
  const jobs = rows as Fetched[]
  assert.deepEqual(names(jobs), expected, 'pg-boss would take the same jobs')
  return jobs
}

const names = (jobs: Fetched[]) => jobs.map((j) => j.data.name).sort()

async function row(id: string | undefined) {
  const { rows } = await fixture.db.pool.query(
    'select state, started_on, heartbeat_on, retry_count from pgboss.job where name = $1 and id = $2',
    [queue, id],
  )
  return rows[0]
}

test('takes due jobs in priority, then creation order, up to the batch size, and claims them as pg-boss does', async () => {
  const ids = await insert(['a', 'b', 'c', 'd', 'later'], { c: { priority: 5 }, later: { startAfter: 3600 } })
  assert.deepEqual(names(await take(2)), ['a', 'c'])
  const a = await row(ids.get('a'))
  assert.equal(a.state, 'active')
  assert.ok(a.started_on && a.heartbeat_on)
  assert.equal(a.retry_count, 0)
  assert.deepEqual(names(await take(10)), ['b', 'd'], 'a job not yet due stays')
  assert.deepEqual(await take(10), [])
})

test('a retry, once due, is taken as the next attempt', async () => {
  const ids = await insert(['a'])
  const [a] = await take(1)
  assert.equal(a?.retryCount, 0)
  const soon = [queue, ids.get('a'), 0, 0, JSON.stringify({ attempt: 1 }), 86_400]
  assert.equal((await run.run(fixture.db.pool, scheduleRetry, soon)).rowCount, 1)
  const [again] = await take(1)
  assert.equal(again?.data.name, 'a')
  assert.equal(again?.retryCount, 1)
  assert.equal((await row(ids.get('a'))).retry_count, 1)
})

test('two fetches at once never take the same job', async () => {
  await insert(['a', 'b', 'c'])
  const taken = await withTransaction(fixture.db.pool, async (first) => {
    const { rows: mine } = await run.run(first, fetchPlain, [queue, 2])
    // The first fetch holds its rows until it commits; the second skips them.
    const { rows: theirs } = await run.run(fixture.db.pool, fetchPlain, [queue, 10])
    return [...(mine as Fetched[]), ...(theirs as Fetched[])]
  })
  assert.deepEqual(names(taken), ['a', 'b', 'c'])
})

test('its kept plan walks the fetch-order index and the claimed rows, whatever the estimates say', async () => {
  await fixture.db.pool.query(
    `insert into pgboss.job_common (id, name, data, state, policy)
     select gen_random_uuid(), $1, '{"name": "x"}', 'created', 'standard' from generate_series(1, 2000)`,
    [queue],
  )
  const client = await fixture.db.pool.connect()
  const plans: string[] = []
  client.on('notice', (n) => {
    if (n.message?.includes('pgboss.job_common')) plans.push(n.message)
  })
  try {
    await client.query(`load 'auto_explain'`)
    await client.query('set auto_explain.log_min_duration = 0')
    await client.query('set auto_explain.log_nested_statements = on')
    await client.query('set client_min_messages = log')
    // The plan kept for the connection (generic), made by a planner that finds index reads dear,
    // as statistics taken on an empty queue can make it find them: it would read every waiting
    // job and sort them, where the index in fetch order yields the batch at once.
    await client.query('set plan_cache_mode = force_generic_plan')
    await client.query('set random_page_cost = 1000000')
    await client.query('begin')
    const { rows } = await client.query('select count(*)::int as n from observers.fetch_plain($1, 16)', [
      queue,
    ])
    await client.query('rollback')
    assert.equal(rows[0].n, 16)
    const plan = plans.join('\n')
    assert.match(plan, /Index Scan using job_common_i11/, plan)
    assert.match(plan, /Tid Scan on job_common/, plan)
    assert.doesNotMatch(plan, /Sort|Seq Scan|Bitmap/, plan)
  } finally {
    await client.query('reset all').catch(() => {})
    client.release()
  }
})

test("a job inserted already active is the row pg-boss's insert and fetch would leave", async () => {
  const delivery = { delivery_id: 'd', action: { type: 'webhook' }, retry: { max_attempts: 4 }, attempts: [] }
  const item = (jobId: string): QueuedDelivery => ({
    jobId,
    queue,
    delivery: delivery as unknown as QueuedDelivery['delivery'],
    key: undefined,
    group: undefined,
    expireInSeconds: 42,
  })
  const viaBoss = randomUUID()
  const direct = randomUUID()
  await enqueue(fixture.boss, fixture.db.pool, [item(viaBoss)], { announce: false })
  const [fetched] = await take(1)
  assert.equal(fetched?.id, viaBoss)
  const started = activeJob(item(direct))
  assert.deepEqual(
    [started.id, started.retryCount, started.data],
    [direct, 0, fetched?.data],
    'the runner starts the job a fetch would return',
  )
  assert.deepEqual(await insertActive(fixture.db.pool, run, queue, [started]), [direct])
  assert.deepEqual(
    await insertActive(fixture.db.pool, run, queue, [activeJob(item(direct))]),
    [],
    'a job already there stays',
  )
  const { rows } = await fixture.db.pool.query(
    `select to_jsonb(j) - array['id', 'start_after', 'created_on', 'started_on', 'heartbeat_on', 'keep_until']
            as columns, keep_until - start_after as kept, started_on = created_on as started_at_insert
       from pgboss.job j where name = $1 and id = any ($2::uuid[]) order by id = $3`,
    [queue, [viaBoss, direct], direct],
  )
  assert.equal(rows.length, 2)
  assert.deepEqual(rows[1].columns, rows[0].columns, 'every other column as pg-boss leaves it')
  assert.deepEqual(rows[1].kept, rows[0].kept)
  assert.equal(rows[1].started_at_insert, true)
  assert.equal(rows[1].columns.state, 'active')
})
