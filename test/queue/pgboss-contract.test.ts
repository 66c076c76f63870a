import assert from 'node:assert/strict'
import { test } from 'node:test'
import pg from 'pg'
import { completeDelivered, type SettledAttempt } from '../../src/db/queries/deliveries.ts'
import { statements } from '../../src/db/statements.ts'
import { dlqQueue, enqueue, type QueuedDelivery, queueName } from '../../src/queue/boss.ts'
import {
  holdForBreaker,
  holdForRate,
  holdPaused,
  markFinalAttempt,
  notifyChannel,
  releaseBreaker,
  releasePaused,
  requeueAttempt,
  scheduleRetry,
} from '../../src/queue/pgboss-sql.ts'
import { queueFixture } from '../helpers/queue.ts'
import { eventually } from '../helpers/worker.ts'

// The statements src/queue/pgboss-sql.ts runs on pg-boss's tables, against the pinned pg-fixture.boss.

const queue = queueName('webhook', 'plain')
const run = statements(true)
const record = (attempt: number) => ({
  attempt,
  at: new Date().toISOString(),
  code: 'OB006',
  error: 'x',
  duration_ms: 1,
})
const fixture = queueFixture()

/** A delivery as the dispatcher enqueues it; only what `enqueue` reads is filled in. */
function queued(id: string): QueuedDelivery {
  const delivery = { delivery_id: id, action: { type: 'webhook' }, retry: { max_attempts: 1 } }
  return {
    jobId: undefined,
    queue,
    delivery: delivery as unknown as QueuedDelivery['delivery'],
    key: undefined,
    group: undefined,
    expireInSeconds: 60,
  }
}

async function activeJob(data: Record<string, unknown> = { attempts: [] }, on = queue) {
  const [id] = (await fixture.boss.insert(on, [{ data, retryLimit: 3 }], { returnId: true })) ?? []
  const [job] = await fixture.boss.fetch(on, { batchSize: 1 })
  assert.ok(job && job.id === id, 'fetched the job just inserted')
  return job
}

async function row(id: string, on = queue) {
  const { rows } = await fixture.db.pool.query(
    `select state, retry_count, retry_limit, start_after, keep_until, data, now() as now
       from pgboss.job where id = $1 and name = $2`,
    [id, on],
  )
  return rows[0]
}

test('a retry scheduled to the millisecond stays a retry and comes back as the next attempt', async () => {
  const job = await activeJob()
  const settled = await run.run(fixture.db.pool, scheduleRetry, [
    queue,
    job.id,
    0,
    1500,
    JSON.stringify(record(1)),
    86_400,
  ])
  assert.equal(settled.rowCount, 1)
  const r = await row(job.id)
  assert.equal(r.state, 'retry')
  const dueInMs = r.start_after.getTime() - r.now.getTime()
  assert.ok(dueInMs > 1000 && dueInMs <= 1500, `due in 1.5 s, not whole seconds (${dueInMs} ms)`)
  assert.equal(r.data.attempts.length, 1, 'the attempt is recorded on the job')
  assert.ok(r.keep_until.getTime() >= r.now.getTime() + 86_000_000, 'retention counts from the retry')
  await fixture.boss.complete(queue, { id: job.id, retryCount: 0 })
  assert.equal((await row(job.id)).state, 'retry', 'completing the settled attempt leaves the retry alone')
  assert.deepEqual(await fixture.boss.fetch(queue, { batchSize: 1 }), [], 'not fetched before it is due')
  const again = await eventually(
    async () => (await fixture.boss.fetch(queue, { batchSize: 1 }))[0],
    15_000,
    'the retry',
  )
  assert.equal(again.id, job.id)
  assert.equal(again.retryCount, 1, 'the next fetch is the next attempt')
  await fixture.boss.complete(queue, again)
})

test('a requeued attempt comes back at once under the same attempt number', async () => {
  const job = await activeJob()
  const settled = await run.run(fixture.db.pool, requeueAttempt, [
    queue,
    job.id,
    0,
    86_400,
    JSON.stringify(record(1)),
  ])
  assert.equal(settled.rowCount, 1)
  assert.equal((await row(job.id)).state, 'retry')
  const [again] = await fixture.boss.fetch(queue, { batchSize: 1 })
  assert.equal(again?.id, job.id)
  assert.equal(again?.retryCount, 0, 'the cut-short attempt was not spent')
  await fixture.boss.complete(queue, { id: job.id, retryCount: 0 })
})

test('a final failure is terminal and reaches the dead-letter queue only when asked', async () => {
  for (const deadLetter of [true, false]) {
    const job = await activeJob({ attempts: [], marker: `final-${deadLetter}` })
    const marked = await run.run(fixture.db.pool, markFinalAttempt, [
      queue,
      job.id,
      0,
      deadLetter,
      JSON.stringify(record(1)),
    ])
    assert.equal(marked.rowCount, 1)
    await fixture.boss.fail(queue, { id: job.id, retryCount: 0 }, { error: 'final' })
    const r = await row(job.id)
    assert.equal(r.state, 'failed', 'failed, with retries left on the job before')
    const { rows } = await fixture.db.pool.query(
      `select data from pgboss.job where name = $1 and data ->> 'marker' = $2`,
      [dlqQueue, `final-${deadLetter}`],
    )
    assert.equal(rows.length, deadLetter ? 1 : 0, `dead letter ${deadLetter ? 'copied' : 'dropped'}`)
    if (deadLetter) assert.equal(rows[0].data.attempts.length, 1, 'the DLQ copy carries the attempts')
  }
})

test('statements about an attempt that no longer holds the job change nothing', async () => {
  const job = await activeJob()
  for (const [statement, values] of [
    [scheduleRetry, [queue, job.id, 1, 10, JSON.stringify(record(2)), 86_400]],
    [requeueAttempt, [queue, job.id, 1, 86_400, JSON.stringify(record(2))]],
    [markFinalAttempt, [queue, job.id, 1, true, JSON.stringify(record(2))]],
  ] as const) {
    assert.equal((await run.run(fixture.db.pool, statement, [...values])).rowCount, 0, statement.name)
  }
  const r = await row(job.id)
  assert.equal(r.state, 'active')
  assert.equal(r.retry_limit, 3)
  await fixture.boss.complete(queue, job)
})

test('a job on an action queue is announced on the channel the runners listen to, by enqueue, not by pg-boss', async () => {
  const client = new pg.Client({ connectionString: fixture.db.url })
  await client.connect()
  try {
    const heard: string[] = []
    client.on('notification', (n) => heard.push(`${n.channel}:${n.payload}`))
    await client.query(`listen "${notifyChannel()}"`)
    assert.equal((await fixture.boss.getQueue(queue))?.notify, false)
    await fixture.boss.insert(queue, [{ data: { attempts: [] } }])
    await enqueue(fixture.boss, fixture.db.pool, [queued('announced')])
    // Notifications arrive in commit order: the insert's would have come first.
    await eventually(() => heard.length > 0, 10_000, 'a notification')
    assert.deepEqual(heard, [`${notifyChannel()}:${queue}`])
  } finally {
    await client.end()
  }
})

// Their own queue, which no earlier test leaves a job on.
const held = queueName('webhook', 'limited')

test('a job held for a pause waits, unspent, until a resume releases it', async () => {
  const job = await activeJob({ observer: 'held', action_index: 0, attempts: [] }, held)
  const targets = ['held', 'held#0']
  const notPaused = await run.run(fixture.db.pool, holdPaused, [held, job.id, 0, targets, 86_400])
  assert.equal(notPaused.rowCount, 0, 'not held when no target is paused')
  await fixture.db.pool.query(`select observers.pause_observer('held#0')`)
  assert.equal((await run.run(fixture.db.pool, holdPaused, [held, job.id, 0, targets, 86_400])).rowCount, 1)
  assert.deepEqual(await fixture.boss.fetch(held, { batchSize: 1 }), [], 'not fetched while paused')
  assert.equal((await run.run(fixture.db.pool, releasePaused, [86_400])).rowCount, 0, 'still paused: kept')
  await fixture.db.pool.query(`select observers.resume_observer('held#0')`)
  assert.equal((await run.run(fixture.db.pool, releasePaused, [86_400])).rowCount, 1)
  const [again] = await fixture.boss.fetch(held, { batchSize: 1 })
  assert.equal(again?.id, job.id)
  assert.equal(again?.retryCount, 0, 'the hold spent no attempt')
  await fixture.boss.complete(held, again)
})

test('a job held for an open breaker waits for the probe time, unspent, or for a close', async () => {
  const job = await activeJob({ attempts: [] }, held)
  const dest = 'webhook:contract'
  assert.equal((await run.run(fixture.db.pool, holdForBreaker, [held, job.id, 0, dest, 86_400])).rowCount, 0)
  await fixture.db.pool.query(
    `insert into observers.breakers values ($1, 5, now(), now() + interval '1 hour')`,
    [dest],
  )
  assert.equal((await run.run(fixture.db.pool, holdForBreaker, [held, job.id, 0, dest, 86_400])).rowCount, 1)
  const r = await row(job.id, held)
  assert.ok(r.start_after.getTime() > r.now.getTime() + 3_500_000, 'due at the next probe')
  assert.equal((await run.run(fixture.db.pool, releaseBreaker, [[dest]])).rowCount, 0, 'still open: kept')
  await fixture.db.pool.query('select observers.close_breaker($1)', [dest])
  assert.equal((await run.run(fixture.db.pool, releaseBreaker, [[dest]])).rowCount, 1)
  const [again] = await fixture.boss.fetch(held, { batchSize: 1 })
  assert.equal(again?.id, job.id)
  assert.equal(again?.retryCount, 0, 'the hold spent no attempt')
  await fixture.boss.complete(held, again)
})

test('a job held for its rate waits until its slot, unspent', async () => {
  const job = await activeJob({ attempts: [] }, held)
  const slot = await fixture.db.pool.query<{ at: string }>(
    `select (now() + interval '300 milliseconds')::text as at`,
  )
  const at = slot.rows[0]?.at
  const hold = [held, job.id, 0, at, 86_400, 'webhook:contract']
  assert.equal((await run.run(fixture.db.pool, holdForRate, hold)).rowCount, 1)
  assert.deepEqual(await fixture.boss.fetch(held, { batchSize: 1 }), [], 'not fetched before its slot')
  const again = await eventually(
    async () => (await fixture.boss.fetch(held, { batchSize: 1 }))[0],
    10_000,
    'its slot',
  )
  assert.equal(again.id, job.id)
  assert.equal(again.retryCount, 0, 'the hold spent no attempt')
  await fixture.boss.complete(held, again)
})

test("a delivered job is completed as pg-boss's complete() leaves it, fenced on the attempt, and recorded", async () => {
  const attempt = (id: string, retryCount: number) => ({
    job: {
      id,
      retryCount,
      data: {
        delivery_id: `contract-${id}`,
        observer: 'contract',
        action_index: 0,
        event: { id: `e-${id}`, entity: 'public.t', entity_id: '1', seq: 1 },
      } as unknown as SettledAttempt['data'],
    },
    output: { status: 200, duration_ms: 3 },
  })
  await fixture.db.pool.query('delete from pgboss.job where name = $1', [queue])
  const viaBoss = await activeJob()
  const ours = await activeJob()
  const stale = await activeJob()
  await fixture.boss.complete(queue, { id: viaBoss.id, retryCount: 0 }, null)
  const completed = await completeDelivered(fixture.db.pool, run, queue, [
    attempt(ours.id, 0),
    attempt(stale.id, 1),
  ])
  assert.equal(completed, 1, 'only the attempt that holds its job completes it')
  const { rows } = await fixture.db.pool.query(
    `select id, to_jsonb(j) - array['id', 'data', 'start_after', 'created_on', 'started_on',
            'heartbeat_on', 'keep_until', 'completed_on'] as columns,
            completed_on is not null as completed_on
       from pgboss.job j where name = $1 and id = any($2::uuid[])`,
    [queue, [viaBoss.id, ours.id, stale.id]],
  )
  const byId = new Map(rows.map((r) => [r.id, r]))
  assert.deepEqual(
    byId.get(ours.id)?.columns,
    byId.get(viaBoss.id)?.columns,
    'every column as pg-boss leaves it',
  )
  assert.equal(byId.get(ours.id)?.columns.state, 'completed')
  assert.equal(byId.get(ours.id)?.completed_on, true)
  assert.equal(
    byId.get(stale.id)?.columns.state,
    'active',
    'an attempt that no longer holds the job changes nothing',
  )
  const records = await fixture.db.pool.query(
    `select delivery_id, outcome, job_attempt, duration_ms from observers.deliveries
      where observer = 'contract' and job_id = any($1::uuid[]) order by job_attempt`,
    [[ours.id, stale.id]],
  )
  assert.deepEqual(records.rows, [
    { delivery_id: `contract-${ours.id}`, outcome: 'delivered', job_attempt: 1, duration_ms: 3 },
    { delivery_id: `contract-${stale.id}`, outcome: 'delivered', job_attempt: 2, duration_ms: 3 },
  ])
})
