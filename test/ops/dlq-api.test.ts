import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { changesSettled } from '../helpers/settled.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api, deadLetters, hookObserver } from './helpers.ts'

const pagedObservers = ['last-page', 'cursor', 'delete'] as const

let db: TestDatabase
let worker: TestWorker
const r: Record<'single' | 'bulkA' | 'bulkB' | 'ordered' | 'secret' | 'paged', Receiver> = {} as never
const hookToken = 'hook-token-0123456789'
const signingSecret = 'signing-secret-0123456789'

before(async () => {
  db = await createTestDatabase()
  await db.pool.query('create table items (id int primary key, kind text not null, n int default 0)')
  for (const name of ['single', 'bulkA', 'bulkB', 'ordered', 'secret', 'paged'] as const)
    r[name] = await startReceiver()
  const only = (kind: string) => ({ condition: `kind = '${kind}'` })
  const dir = await observersDir({
    'single.json': hookObserver('single', 'items', r.single.url, only('single')),
    'bulk-a.json': hookObserver('bulk-a', 'items', r.bulkA.url, only('bulk')),
    'bulk-b.json': hookObserver('bulk-b', 'items', r.bulkB.url, only('bulk')),
    'ordered.json': hookObserver('ordered', 'items', r.ordered.url, {
      ...only('ordered'),
      ordering: 'entity',
    }),
    'secret.json': hookObserver('secret', 'items', `${r.secret.url}/orders/{{ id }}`, {
      ...only('secret'),
      actions: [
        {
          type: 'webhook',
          url: `${r.secret.url}/orders/{{ id }}?token={{ "${hookToken}" }}`,
          method: 'PUT',
          headers: { 'x-kind': '{{ kind }}' },
          headers_env: { authorization: 'HOOK_TOKEN' },
          signing_secret_env: 'HOOK_SIGNING_SECRET',
          body_template: { id: '{{ id }}', note: `echo ${hookToken}` },
        },
      ],
    }),
    // One observer per paging test, so each reads only the dead letters it made.
    ...Object.fromEntries(
      pagedObservers.map((name) => [`${name}.json`, hookObserver(name, 'items', r.paged.url, only(name))]),
    ),
  })
  for (const rec of Object.values(r)) rec.reply([{ status: 503, body: 'down for maintenance' }])
  worker = await runWorker(db.url, dir, { HOOK_TOKEN: hookToken, HOOK_SIGNING_SECRET: signingSecret })
})

/** Five dead letters of `observer` (one of pagedObservers), from rows `firstId` to `firstId + 4`. */
async function fiveDeadLetters(observer: (typeof pagedObservers)[number], firstId: number) {
  await db.pool.query(`insert into items select g, $1 from generate_series($2::int, $2::int + 4) g`, [
    observer,
    firstId,
  ])
  return deadLetters(db.pool, observer, 5)
}

after(async () => {
  await worker?.stop()
  for (const rec of Object.values(r)) await rec?.close()
  await db?.drop()
})

test('a dead letter is listed, shown with its attempts, and retried to a receiver that came back', async () => {
  await db.pool.query(`insert into items values (1, 'single')`)
  const [id] = await deadLetters(db.pool, 'single')
  const list = await api(worker.worker, '/api/dlq?observer=single')
  assert.equal(list.status, 200)
  assert.equal(list.body.items.length, 1)
  const item = list.body.items[0]
  assert.equal(item.id, id)
  assert.equal(item.entity, 'public.items')
  assert.equal(item.entity_id, '1')
  assert.equal(item.last_error_code, 'OB013')
  assert.match(item.last_error, /503.*down for maintenance/)
  const shown = await api(worker.worker, `/api/dlq/${id}`)
  assert.equal(shown.status, 200)
  assert.equal(shown.body.attempt_history.length, 1)
  assert.equal(shown.body.attempt_history[0].status, 503)
  assert.equal(shown.body.delivery.action.url, r.single.url)

  r.single.reply([{ status: 200 }])
  const retried = await api(worker.worker, `/api/dlq/${id}/retry`, { method: 'POST' })
  assert.equal(retried.status, 200)
  assert.equal(retried.body.retried, 1)
  const reqs = await r.single.waitFor(2)
  assert.equal(reqs[1]!.headers['user-agent'], 'pg-observers')
  assert.equal(JSON.parse(reqs[1]!.body).after.id, 1)
  const { rows } = await db.pool.query(`select count(*)::int as n from observers.dlq`)
  assert.equal(rows[0].n, 0, 'the dead letter is gone')
  const again = await api(worker.worker, `/api/dlq/${id}/retry`, { method: 'POST' })
  assert.equal(again.status, 404)
  assert.equal(again.body.code, 'not_found')
  assert.equal((await api(worker.worker, `/api/dlq/${id}`)).status, 404)
})

test('bulk retry by filter retries only what the filter selects', async () => {
  await db.pool.query(`insert into items select g, 'bulk' from generate_series(10, 14) g`)
  await deadLetters(db.pool, 'bulk-a', 5)
  await deadLetters(db.pool, 'bulk-b', 5)
  r.bulkA.reply([{ status: 204 }])
  const res = await api(worker.worker, '/api/dlq/retry', { method: 'POST', body: { observer: 'bulk-a' } })
  assert.equal(res.status, 200)
  assert.deepEqual(res.body, { retried: 5 })
  await r.bulkA.waitFor(10)
  const left = await api(worker.worker, '/api/dlq?entity=items')
  assert.deepEqual(
    left.body.items.map((i: { observer: string }) => i.observer).filter((o: string) => o.startsWith('bulk-')),
    ['bulk-b', 'bulk-b', 'bulk-b', 'bulk-b', 'bulk-b'],
    "only bulk-a's dead letters were retried",
  )
  const none = await api(worker.worker, '/api/dlq/retry?observer=bulk-b&until=2000-01-01T00:00:00Z', {
    method: 'POST',
  })
  assert.deepEqual(none.body, { retried: 0 }, 'until before every failure selects nothing')
})

test('the last page has no next_cursor, also when it is full', async () => {
  await fiveDeadLetters('last-page', 40)
  const full = await api(worker.worker, '/api/dlq?observer=last-page&limit=5')
  assert.equal(full.body.items.length, 5)
  assert.equal(full.body.next_cursor, null)
  const first = await api(worker.worker, '/api/dlq?observer=last-page&limit=4')
  assert.equal(first.body.items.length, 4)
  assert.ok(first.body.next_cursor)
  const rest = await api(
    worker.worker,
    `/api/dlq?observer=last-page&limit=4&cursor=${first.body.next_cursor}`,
  )
  assert.equal(rest.body.items.length, 1)
  assert.equal(rest.body.next_cursor, null)
})

test('pages follow the cursor without repeats, newest first', async () => {
  await fiveDeadLetters('cursor', 50)
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const page = await api(
      worker.worker,
      `/api/dlq?observer=cursor&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
    )
    assert.ok(page.body.items.length <= 2)
    seen.push(...page.body.items.map((i: { id: string }) => i.id))
    cursor = page.body.next_cursor
  } while (cursor)
  assert.equal(seen.length, 5)
  assert.equal(new Set(seen).size, 5)
  const all = await api(worker.worker, '/api/dlq?observer=cursor&type=webhook&since=1h')
  assert.deepEqual(
    all.body.items.map((i: { id: string }) => i.id),
    seen,
  )
  const times = all.body.items.map((i: { failed_at: string }) => Date.parse(i.failed_at))
  assert.deepEqual(
    times,
    [...times].sort((a, b) => b - a),
  )
  assert.equal((await api(worker.worker, '/api/dlq?type=email')).body.items.length, 0)
})

test('DELETE removes one dead letter for good', async () => {
  const [id] = await fiveDeadLetters('delete', 60)
  const res = await api(worker.worker, `/api/dlq/${id}`, { method: 'DELETE' })
  assert.deepEqual(res.body, { deleted: 1 })
  assert.equal((await api(worker.worker, `/api/dlq/${id}`, { method: 'DELETE' })).status, 404)
  const left = await api(worker.worker, '/api/dlq?observer=delete')
  assert.equal(left.body.items.length, 4)
})

test('retrying a strict-FIFO dead letter runs it, then the changes of its row that queued behind it', async () => {
  await db.pool.query(`insert into items values (30, 'ordered')`)
  const [id] = await deadLetters(db.pool, 'ordered')
  await db.pool.query(`update items set n = 1 where id = 30`)
  await db.pool.query(`update items set n = 2 where id = 30`)
  // A later row of the same queue delivered, with nothing of the queue still running: the
  // worker has fetched past row 30's updates, so they wait behind the failed change.
  r.ordered.reply((q) => (JSON.parse(q.body).after.id === 31 ? { status: 200 } : { status: 503 }))
  await db.pool.query(`insert into items values (31, 'ordered')`)
  await changesSettled(db.pool, 'public.items', 31)
  const { rows: blocked } = await db.pool.query(
    `select state from pgboss.job where name = 'observers.webhook.ordered' and state < 'completed'`,
  )
  assert.deepEqual(
    blocked.map((b) => b.state),
    ['created', 'created'],
  )
  const ofRow30 = () => r.ordered.requests.filter((q) => JSON.parse(q.body).after.id === 30)
  assert.equal(ofRow30().length, 1, 'later changes of the row wait behind the failed one')
  r.ordered.reply([{ status: 200 }])
  const res = await api(worker.worker, `/api/dlq/${id}/retry`, { method: 'POST' })
  assert.equal(res.body.retried, 1)
  await eventually(() => ofRow30().length >= 4, 30_000, 'row 30 delivered after the retry')
  const delivered = ofRow30()
    .slice(1)
    .map((q) => JSON.parse(q.body))
  assert.deepEqual(
    delivered.map((e) => [e.event, e.after.n]),
    [
      ['INSERT', 0],
      ['UPDATE', 1],
      ['UPDATE', 2],
    ],
    'the retried change runs first, then the changes that waited behind it, in commit order',
  )
  await eventually(async () => {
    const { rows } = await db.pool.query(
      `select count(*)::int as n from pgboss.job where name = 'observers.webhook.ordered' and state <> 'completed'`,
    )
    return rows[0].n === 0
  })
})

test('bad input answers 400 with a code, unknown routes 404, wrong methods 405', async () => {
  const bad = await api(worker.worker, '/api/dlq?since=yesterday-ish')
  assert.equal(bad.status, 400)
  assert.equal(bad.body.code, 'OB015')
  assert.match(bad.body.message, /since/)
  assert.equal((await api(worker.worker, '/api/dlq?limit=0')).status, 400)
  assert.equal((await api(worker.worker, '/api/dlq?cursor=nonsense')).status, 400)
  assert.equal((await api(worker.worker, '/api/dlq/not-a-uuid')).status, 404)
  assert.equal((await api(worker.worker, '/api/nothing')).status, 404)
  assert.equal((await api(worker.worker, '/api/dlq', { method: 'PUT' })).status, 405)
})

test('a dead letter shows the request its attempt sent, with every secret redacted', async () => {
  await db.pool.query(`insert into items values (70, 'secret')`)
  const [id] = await deadLetters(db.pool, 'secret')
  const [sent] = await r.secret.waitFor(1)
  const shown = await api(worker.worker, `/api/dlq/${id}`)
  assert.equal(shown.status, 200)
  const request = shown.body.request
  assert.equal(request.kind, 'http')
  assert.equal(request.method, 'PUT')
  assert.equal(request.url, `${r.secret.url}/orders/70?token=[redacted]`)
  assert.equal(request.headers['x-kind'], 'secret')
  assert.equal(request.headers.authorization, '[redacted]')
  assert.equal(request.headers['webhook-signature'], '[redacted]')
  assert.equal(request.headers['webhook-id'], shown.body.delivery_id)
  const body = JSON.parse(request.body)
  assert.equal(String(body.id), '70')
  assert.equal(body.note, 'echo [redacted]')
  assert.equal(sent!.headers.authorization, hookToken, 'the attempt itself sent the secret')
  const text = JSON.stringify(shown.body.request)
  assert.ok(!text.includes(hookToken) && !text.includes(signingSecret), text)
})

test('purge by filter counts first, then deletes only what the filter and error code select', async () => {
  const before = (await api(worker.worker, '/api/dlq?observer=bulk-b')).body.items.length
  assert.ok(before > 0)
  const none = await api(worker.worker, '/api/dlq/purge', {
    method: 'POST',
    body: { observer: 'bulk-b', code: 'OB999', dry_run: true },
  })
  assert.deepEqual(none.body, { matched: 0 })
  const count = await api(worker.worker, '/api/dlq/purge?observer=bulk-b', {
    method: 'POST',
    body: { code: 'OB013', dry_run: true },
  })
  assert.deepEqual(count.body, { matched: before })
  const everything = await api(worker.worker, '/api/dlq/purge', { method: 'POST', body: {} })
  assert.equal(everything.status, 400, 'an empty filter needs "all": true')
  const purged = await api(worker.worker, '/api/dlq/purge', {
    method: 'POST',
    body: { observer: 'bulk-b', code: 'OB013' },
  })
  assert.deepEqual(purged.body, { deleted: before })
  assert.equal((await api(worker.worker, '/api/dlq?observer=bulk-b')).body.items.length, 0)
  assert.equal((await api(worker.worker, '/api/dlq?observer=secret&code=OB013')).body.items.length, 1)
})

test('10 000 dead letters come a page at a time, and purge by filter takes them all', async () => {
  const [seed] = await deadLetters(db.pool, 'secret')
  const { rows: cols } = await db.pool.query<{ list: string }>(
    `select string_agg(quote_ident(column_name), ', ') as list from information_schema.columns
      where table_schema = 'pgboss' and table_name = 'job' and column_name not in ('id', 'data')
        and is_generated = 'NEVER'`,
  )
  await db.pool.query(
    `insert into pgboss.job (id, data, ${cols[0]!.list})
     select gen_random_uuid(), jsonb_set(j.data, '{observer}', '"mass"'), ${cols[0]!.list
       .split(', ')
       .map((c) => `j.${c}`)
       .join(', ')}
       from pgboss.job j, generate_series(1, 10000) where j.id = $1`,
    [seed],
  )
  const page = await api(worker.worker, '/api/dlq?observer=mass')
  assert.equal(page.status, 200)
  assert.equal(page.body.items.length, 50, 'one page, not everything')
  assert.ok(page.body.next_cursor)
  const second = await api(worker.worker, `/api/dlq?observer=mass&limit=500&cursor=${page.body.next_cursor}`)
  assert.equal(second.body.items.length, 500)
  const firstIds = new Set(page.body.items.map((i: { id: string }) => i.id))
  assert.ok(second.body.items.every((i: { id: string }) => !firstIds.has(i.id)))
  const count = await api(worker.worker, '/api/dlq/purge', {
    method: 'POST',
    body: { observer: 'mass', dry_run: true },
  })
  assert.deepEqual(count.body, { matched: 10_000 })
  const purged = await api(worker.worker, '/api/dlq/purge', { method: 'POST', body: { observer: 'mass' } })
  assert.deepEqual(purged.body, { deleted: 10_000 })
  assert.equal((await api(worker.worker, '/api/dlq?observer=secret')).body.items.length, 1)
})
