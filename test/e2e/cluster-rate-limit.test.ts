import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Cluster, startCluster } from '../helpers/cluster.ts'
import { type Arrival, type CountingReceiver, startCountingReceiver } from '../helpers/counting-receiver.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { opsGet } from '../helpers/process.ts'
import { eventually } from '../helpers/worker.ts'

const perSecond = 50
const rows = 300
const retryAfterSeconds = 2
let db: TestDatabase
let receiver: CountingReceiver
let cluster: Cluster | undefined

before(async () => {
  db = await createTestDatabase(
    'create table rated (id int primary key); create table throttled (id int primary key); create table burst (id int primary key)',
  )
  // Watched up front: four workers starting at once would each try to attach the trigger.
  await db.pool.query(
    `select observers.watch('rated'); select observers.watch('throttled'); select observers.watch('burst')`,
  )
  receiver = await startCountingReceiver(10)
  const observer = (name: string, action: Record<string, unknown>) => ({
    name,
    entity: name,
    events: ['INSERT'],
    retry: { max_attempts: 5, initial_delay_ms: 100, backoff_strategy: 'fixed' },
    actions: [
      { type: 'webhook', url: `${receiver.url}/${name}`, body_template: { id: '{{ id }}' }, ...action },
    ],
  })
  cluster = await startCluster(
    db.url,
    {
      'rated.json': observer('rated', { rate_limit: { per_second: perSecond } }),
      // One at a time, so each request leaves only after the answer before it was recorded.
      'throttled.json': observer('throttled', { rate_limit: { per_second: 1000 }, max_concurrency: 1 }),
      'burst.json': observer('burst', { rate_limit: { per_second: 1 } }),
    },
    4,
    { OBSERVERS_CONCURRENCY: '8' },
  )
})

after(async () => {
  await cluster?.stop()
  await receiver?.close()
  await db?.drop()
})

function arrivals(path: string): Arrival[] {
  return receiver.arrivals.filter((a) => a.path === path)
}

function ids(list: Arrival[]): number[] {
  return list.map((a) => (JSON.parse(a.body) as { id: number }).id).sort((a, b) => a - b)
}

/** Most arrivals in one second: by whole seconds of the receiver's clock, and in any 1000 ms window. */
function busiestSecond(list: Arrival[]): { fixed: number; sliding: number } {
  const times = list.map((a) => a.at).sort((a, b) => a - b)
  const bySecond = Map.groupBy(times, (t) => Math.floor(t / 1000))
  const fixed = Math.max(...[...bySecond.values()].map((v) => v.length))
  let sliding = 0
  for (let i = 0, j = 0; i < times.length; i++) {
    while ((times[i] as number) - (times[j] as number) >= 1000) j++
    sliding = Math.max(sliding, i - j + 1)
  }
  return { fixed, sliding }
}

test(`rate_limit ${perSecond}/s holds across 4 worker processes in every second at the receiver, and every delivery arrives once`, async () => {
  for (let i = 0; i < rows; i += 50) {
    await db.pool.query('insert into rated select generate_series($1::int, $2::int)', [i + 1, i + 50])
  }
  await eventually(() => arrivals('/rated').length >= rows, 120_000, 'all deliveries')
  assert.deepEqual(
    ids(arrivals('/rated')),
    Array.from({ length: rows }, (_, i) => i + 1),
    'each delivered once',
  )
  const busiest = busiestSecond(arrivals('/rated'))
  console.log(
    `busiest second at the receiver: ${busiest.fixed} (whole seconds), ${busiest.sliding} (any 1000 ms)`,
  )
  assert.ok(busiest.fixed <= perSecond, `at most ${perSecond} in a whole second (${busiest.fixed})`)
  assert.ok(busiest.sliding <= perSecond, `at most ${perSecond} in any 1000 ms (${busiest.sliding})`)
  // Any one worker answers for the cluster: the record and the jobs are read from the database.
  // The receiver answers before each completion is written: wait for the last ones, and for the
  // last job to leave the queue.
  const shown = await eventually(
    async () => {
      const r = await opsGet(cluster?.ports[0] ?? 0, '/api/observers/rated')
      const jobs = r.body?.jobs
      const left = jobs ? jobs.created + jobs.retry + jobs.active : -1
      return r.body?.deliveries?.delivered === rows && left === 0 ? r : undefined
    },
    30_000,
    'every delivery recorded and no job left',
  )
  const { rows: spent } = await db.pool.query<{ attempts: number; last_error: string | null }>(
    `select attempts, last_error from observers.deliveries
      where observer = 'rated' and (attempts > 1 or outcome <> 'delivered')`,
  )
  assert.deepEqual(spent, [], 'waiting spent no attempt')
  assert.equal(shown.body.activity.delivered, rows)
  assert.equal(shown.body.actions[0].rate_limit.per_second, perSecond)
})

test('deliveries over the rate wait, and the workers count them', async () => {
  // Five jobs made in one transaction at 1/s: however slow the machine, they ask for the rate
  // together, so some must wait (at 50/s above, only a machine fast enough ever waits).
  await db.pool.query('insert into burst select generate_series(1, 5)')
  await eventually(() => arrivals('/burst').length >= 5, 60_000, 'all deliveries')
  assert.deepEqual(ids(arrivals('/burst')), [1, 2, 3, 4, 5], 'each delivered once')
  const waits = await Promise.all((cluster?.ports ?? []).map((p) => opsGet(p, '/metrics')))
  const waited = waits.some((m) =>
    /observers_rate_limit_waits_total\{observer="burst",reason="rate"\} [1-9]/.test(m.body),
  )
  assert.ok(waited, 'the workers counted deliveries that waited for their rate')
})

test('a 429 with Retry-After holds the whole cluster, not just the refused delivery', async () => {
  let refusedAt: number | undefined
  receiver.answer((a) => {
    if (a.path !== '/throttled' || refusedAt !== undefined || arrivals('/throttled').length < 3)
      return { status: 200 }
    refusedAt = a.at
    return { status: 429, headers: { 'retry-after': String(retryAfterSeconds) } }
  })
  await db.pool.query('insert into throttled select generate_series(1, 10)')
  await eventually(() => new Set(ids(arrivals('/throttled'))).size === 10, 60_000, 'all deliveries')
  const after = arrivals('/throttled').filter((a) => refusedAt !== undefined && a.at > refusedAt)
  assert.ok(refusedAt !== undefined && after.length > 0)
  const gap = (after[0] as Arrival).at - refusedAt
  assert.ok(
    gap >= retryAfterSeconds * 1000,
    `nothing reached the destination for ${retryAfterSeconds} s (${gap} ms)`,
  )
  assert.equal(arrivals('/throttled').length, 11, 'each delivered once, the refused one twice')
})
