import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { insertBackfill } from '../../src/db/queries/backfills.ts'
import { openApiDocument } from '../../src/ops/openapi.ts'
import { routeTable } from '../../src/ops/routes.ts'
import { deadLetterMalformed } from '../../src/queue/boss.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { deadLetters, hookObserver } from './helpers.ts'

// biome-ignore lint/suspicious/noExplicitAny: the document is walked as plain JSON
const doc = openApiDocument as any
const docId = 'https://pg-observers.invalid/openapi.json'
const ajv = new Ajv2020({ strict: false, allErrors: true })
ajv.addFormat('date-time', { type: 'string', validate: (s: string) => !Number.isNaN(Date.parse(s)) })
ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i)
ajv.addSchema(doc, docId)

const token = 'openapi-test-token'
let db: TestDatabase
let worker: TestWorker
let receiver: Receiver
let dir: string
/** `METHOD /path/{template}` of every operation a test called, with the statuses seen. */
const called = new Map<string, Set<string>>()

const pointer = (...parts: string[]) =>
  parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')

function responseOf(template: string, method: string, status: number) {
  const op = doc.paths[template]?.[method.toLowerCase()]
  assert.ok(op, `openapi.json has no ${method} ${template}`)
  const key = String(status) in op.responses ? String(status) : 'default'
  let response = op.responses[key]
  assert.ok(response, `openapi.json has no ${status} response for ${method} ${template}`)
  if (response.$ref) response = doc.components.responses[response.$ref.split('/').pop()]
  const at = response.$ref ? '' : `#/${pointer('paths', template, method.toLowerCase(), 'responses', key)}`
  const ref = op.responses[key].$ref
    ? `#/${pointer('components', 'responses', op.responses[key].$ref.split('/').pop())}`
    : at
  return { response, ref }
}

function assertConforms(schemaRef: string, body: unknown, what: string) {
  const validate = ajv.getSchema(`${docId}${schemaRef}`)
  assert.ok(validate, `no schema at ${schemaRef}`)
  assert.ok(validate(body), `${what}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body, null, 2)}`)
}

/** Calls the worker for real and checks the status, content type and body against openapi.json. */
async function call(
  method: string,
  template: string,
  opts: { path?: string; body?: string; auth?: boolean; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.auth !== false) headers.authorization = `Bearer ${token}`
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`http://127.0.0.1:${worker.worker.ops?.port}${opts.path ?? template}`, {
    method,
    headers,
    ...(opts.body === undefined ? {} : { body: opts.body }),
  })
  const key = `${method} ${template}`
  if (!called.has(key)) called.set(key, new Set())
  called.get(key)?.add(String(res.status))
  const { response, ref } = responseOf(template, method, res.status)
  const type = res.headers.get('content-type')?.split(';')[0] ?? ''
  const media = response.content?.[type]
  assert.ok(media, `${key} answered ${res.status} ${type}, which openapi.json does not describe`)
  if (type !== 'application/json') return { status: res.status, res, body: undefined }
  // biome-ignore lint/suspicious/noExplicitAny: validated against the schema just below
  const body: any = await res.json()
  assertConforms(`${ref}/${pointer('content', type, 'schema')}`, body, `${key} ${res.status}`)
  return { status: res.status, res, body }
}

/** A request no operation describes: its error body is the document's generic Error response. */
async function undescribed(method: string, path: string) {
  const res = await fetch(`http://127.0.0.1:${worker.worker.ops?.port}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}` },
  })
  const body = (await res.json()) as { code: string }
  assertConforms(
    `#/${pointer('components', 'responses', 'Error', 'content', 'application/json', 'schema')}`,
    body,
    `${method} ${path}`,
  )
  return body
}

before(async () => {
  db = await createTestDatabase()
  await db.pool.query('create table items (id int primary key, kind text not null)')
  await db.pool.query('create table parts (id int primary key, kind text not null)')
  receiver = await startReceiver()
  receiver.reply([{ status: 503, body: 'down' }])
  dir = await observersDir({ 'failing.json': hookObserver('failing', 'items', receiver.url) })
  worker = await runWorker(db.url, dir, { OBSERVERS_API_TOKEN: token, OBSERVERS_STREAM_MAX_CLIENTS: '1' })
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

test('openapi.json is a valid OpenAPI 3.1 document that describes every route', async () => {
  assert.equal(doc.openapi, '3.1.0')
  const concrete = (template: string) => template.replaceAll(/\{[^}]+\}/g, 'x')
  for (const route of routeTable) {
    const described = Object.entries(doc.paths).some(
      ([template, item]) =>
        route.path.test(concrete(template)) && route.method.toLowerCase() in (item as object),
    )
    assert.ok(described, `route ${route.method} ${route.path} is missing from openapi.json`)
  }
  const served = await call('GET', '/api/openapi.json')
  assert.deepEqual(served.body, doc)
  assert.equal((await call('GET', '/api/openapi.json', { auth: false })).status, 401)
})

test('probes answer as described', async () => {
  assert.equal((await call('GET', '/healthz', { auth: false })).status, 200)
  await eventually(async () => (await call('GET', '/readyz', { auth: false })).status === 200)
  const backlog = await eventually(async () => {
    const b = await call('GET', '/api/backlog')
    return b.body.samples.length > 0 ? b : undefined
  })
  assert.equal(backlog.body.samples[0].backlog >= 0, true)
  const metrics = await call('GET', '/metrics', { auth: false })
  assert.equal(metrics.status, 200)
  assert.match(await metrics.res.text(), /observers_/)
})

test('observers and reload answer as described, including a rejected reload', async () => {
  const list = await call('GET', '/api/observers')
  assert.equal(list.body.observers[0].name, 'failing')
  assert.equal((await call('GET', '/api/observers', { auth: false })).status, 401)
  assert.equal((await call('POST', '/api/observers/reload')).status, 200)
  await writeFile(path.join(dir, 'broken.json'), '{ nope')
  const rejected = await call('POST', '/api/observers/reload')
  assert.equal(rejected.status, 422)
  assert.equal(rejected.body.problems[0].code, 'OB001')
  await writeFile(
    path.join(dir, 'broken.json'),
    JSON.stringify(hookObserver('second', 'items', receiver.url)),
  )
  assert.equal((await call('POST', '/api/observers/reload')).status, 200)
  assert.equal((await undescribed('PUT', '/api/observers/reload')).code, 'method_not_allowed')
})

test('fire, replay, the delivery record and backfills answer as described, errors included', async () => {
  await writeFile(path.join(dir, 'parts.json'), JSON.stringify(hookObserver('parts', 'parts', receiver.url)))
  await writeFile(
    path.join(dir, 'gated.json'),
    JSON.stringify(hookObserver('gated', 'parts', receiver.url, { condition: `kind = 'never'` })),
  )
  assert.equal((await call('POST', '/api/observers/reload')).status, 200)
  await db.pool.query(`insert into parts values (1, 'a'), (2, 'b'), (3, 'c')`)

  const record = await eventually(async () => {
    const r = await call('GET', '/api/deliveries', {
      path: '/api/deliveries?observer=parts&outcome=dead_lettered&entity=parts&since=1h&limit=10',
    })
    return r.body.deliveries.length === 3 ? r : undefined
  })
  assert.deepEqual(record.body.deliveries.map((d: { entity_id: string }) => d.entity_id).sort(), [
    '1',
    '2',
    '3',
  ])
  const oneRow = await call('GET', '/api/deliveries', { path: '/api/deliveries?observer=parts&entity_id=2' })
  assert.equal(
    oneRow.body.deliveries[0].seq,
    record.body.deliveries.find((d: { entity_id: string }) => d.entity_id === '2').seq,
  )
  const badOutcome = await call('GET', '/api/deliveries', { path: '/api/deliveries?outcome=lost' })
  assert.equal(badOutcome.status, 400)
  assert.equal(badOutcome.body.code, 'OB015')

  const fire = (name: string, body: unknown) =>
    call('POST', '/api/observers/{name}/fire', {
      path: `/api/observers/${name}/fire`,
      body: JSON.stringify(body),
    })
  const fired = await fire('parts', { row: 2 })
  assert.equal(fired.status, 202)
  assert.deepEqual(
    [fired.body.entity, fired.body.entity_id, fired.body.delivery_ids.length],
    ['public.parts', '2', 1],
  )
  assert.equal((await fire('gated', { row: 2 })).body.code, 'OB002')
  assert.equal((await fire('gated', { row: 2, force: true })).status, 202)
  assert.equal((await fire('nobody', { row: 2 })).status, 404)
  const noRow = await fire('parts', { row: 99 })
  assert.deepEqual([noRow.status, noRow.body.code], [400, 'OB001'])
  assert.equal((await fire('parts', { row: true })).status, 400)

  const preview = await call('POST', '/api/replay', {
    body: JSON.stringify({
      since: '1h',
      observer: 'parts',
      entity: 'parts',
      outcome: 'failed',
      dry_run: true,
    }),
  })
  assert.equal(preview.status, 200)
  assert.deepEqual([preview.body.dry_run, preview.body.deliveries], [true, 3])
  assert.equal(preview.body.destinations[0].observer, 'parts')
  const replayed = await call('POST', '/api/replay', {
    body: JSON.stringify({ seq: `${record.body.deliveries[0].seq}`, observer: 'parts' }),
  })
  assert.deepEqual([replayed.status, replayed.body.dry_run, replayed.body.deliveries], [200, false, 1])
  const noRange = await call('POST', '/api/replay', { body: '{}' })
  assert.deepEqual([noRange.status, noRange.body.code], [400, 'OB015'])
  const noSource = await call('POST', '/api/replay', {
    body: '{"since":"1h","source":"nope","dry_run":true}',
  })
  assert.deepEqual([noSource.status, noSource.body.code], [400, 'OB001'])
  const ownSource = await call('POST', '/api/replay', {
    body: JSON.stringify({ since: '1h', source: 'changelog', dry_run: true }),
  })
  assert.equal(ownSource.status, 200)
  assert.equal(
    (await call('POST', '/api/replay', { body: '{"since":"1h","observer":"nobody"}' })).status,
    404,
  )

  const created = await call('POST', '/api/backfills', {
    body: JSON.stringify({ table: 'parts', observers: ['parts'], page_size: 2, pause_ms: 0 }),
  })
  assert.deepEqual([created.status, created.body.state, created.body.rows_total], [202, 'running', 3])
  const one = `/api/backfills/${created.body.id}`
  const done = await eventually(async () => {
    const b = await call('GET', '/api/backfills/{id}', { path: one })
    return b.body.state === 'done' ? b : undefined
  })
  assert.equal(done.body.rows_done, 3)
  const resumeDone = await call('POST', '/api/backfills/{id}/resume', { path: `${one}/resume` })
  assert.deepEqual([resumeDone.status, resumeDone.body.code], [409, 'conflict'])
  const noTable = await call('POST', '/api/backfills', { body: '{"table":"nowhere"}' })
  assert.deepEqual([noTable.status, noTable.body.code], [400, 'OB001'])
  const notWatching = await call('POST', '/api/backfills', {
    body: '{"table":"parts","observers":["nobody"]}',
  })
  assert.deepEqual([notWatching.status, notWatching.body.code], [422, 'OB002'])

  // A backfill whose worker went away keeps state running: stop it, then resume it here.
  const orphan = await insertBackfill(db.pool, {
    entity: 'public.parts',
    where: `kind <> 'b'`,
    observers: ['parts'],
    total: 2,
    pageSize: 1,
    pauseMs: 0,
  })
  const stopped = await call('POST', '/api/backfills/{id}/stop', { path: `/api/backfills/${orphan.id}/stop` })
  assert.deepEqual([stopped.status, stopped.body.state], [200, 'stopped'])
  const list = await call('GET', '/api/backfills')
  assert.deepEqual(
    list.body.backfills.map((b: { id: number }) => b.id),
    [orphan.id, created.body.id],
  )
  const resumed = await call('POST', '/api/backfills/{id}/resume', {
    path: `/api/backfills/${orphan.id}/resume`,
  })
  assert.equal(resumed.status, 202)
  const finished = await eventually(async () => {
    const b = await call('GET', '/api/backfills/{id}', { path: `/api/backfills/${orphan.id}` })
    return b.body.state === 'done' ? b : undefined
  })
  assert.equal(finished.body.rows_done, 2)
  const missing = '/api/backfills/999999'
  assert.equal((await call('GET', '/api/backfills/{id}', { path: missing })).status, 404)
  assert.equal((await call('POST', '/api/backfills/{id}/stop', { path: `${missing}/stop` })).status, 404)
  assert.equal((await call('POST', '/api/backfills/{id}/resume', { path: `${missing}/resume` })).status, 404)
})

test('pause and resume answer as described, an unknown observer included', async () => {
  const at = (target: string, verb: string) => ({ path: `/api/observers/${target}/${verb}` })
  const pause = '/api/observers/{target}/pause'
  const resume = '/api/observers/{target}/resume'
  assert.equal((await call('POST', pause, at('nobody', 'pause'))).status, 404)
  assert.equal((await call('POST', pause, at('failing%230', 'pause'))).status, 200)
  const list = await call('GET', '/api/observers')
  const failing = list.body.observers.find((o: { name: string }) => o.name === 'failing')
  assert.equal(failing.actions[0].paused, true)
  assert.equal((await call('POST', resume, at('failing%230', 'resume'))).status, 200)
})

test('one observer answers with its cluster-wide state, an unknown one 404', async () => {
  const show = '/api/observers/{name}'
  await db.pool.query(`insert into items values (100, 'shown')`)
  const shown = await eventually(async () => {
    const r = await call('GET', show, { path: '/api/observers/failing' })
    return r.body.deliveries.retrying + r.body.deliveries.dead_lettered > 0 ? r : undefined
  })
  assert.equal(shown.status, 200)
  assert.equal(shown.body.actions[0].destination.startsWith('webhook:'), true)
  assert.equal((await call('GET', show, { path: '/api/observers/nobody' })).status, 404)
})

test("the list's stats answer as described once a failure is in the hour's record", async () => {
  await db.pool.query(`insert into items values (101, 'listed')`)
  // Each worker reads the hour's figures at most every 10 s.
  const failing = await eventually(async () => {
    const list = await call('GET', '/api/observers')
    const o = list.body.observers.find((x: { name: string }) => x.name === 'failing')
    return o?.stats.last_error ? o : undefined
  })
  assert.equal(failing.stats.last_error.code, 'OB013')
  assert.ok(failing.stats.failed > 0)
  assert.equal(failing.stats.p50_ms, failing.activity.p50_ms)
})

test('closing a breaker answers as described, an unknown destination included', async () => {
  const close = '/api/breakers/{destination}/close'
  await db.pool.query(`insert into observers.breakers values ('webhook:example.test', 5, now(), now())`)
  assert.equal(
    (await call('POST', close, { path: '/api/breakers/webhook%3Aexample.test/close' })).status,
    200,
  )
  assert.equal((await call('POST', close, { path: '/api/breakers/nowhere/close' })).status, 404)
})

test('the DLQ routes and the stream answer as described, errors included', async () => {
  const stream = await fetch(`http://127.0.0.1:${worker.worker.ops?.port}/api/stream?outcome=failed`, {
    headers: { authorization: `Bearer ${token}` },
  })
  called.set('GET /api/stream', new Set([String(stream.status)]))
  assert.equal(stream.status, 200)
  assert.ok(responseOf('/api/stream', 'GET', 200).response.content['text/event-stream'])
  const full = await call('GET', '/api/stream')
  assert.equal(full.status, 503)
  assert.equal(full.body.code, 'stream_full')

  await db.pool.query(`insert into items values (1, 'a'), (2, 'b'), (3, 'c')`)
  const reader = stream.body?.getReader()
  assert.ok(reader)
  let text = ''
  const decoder = new TextDecoder()
  const execution = await eventually(async () => {
    const { value } = await reader.read()
    text += decoder.decode(value)
    const m = /event: execution\ndata: (.*)\n/.exec(text)
    return m?.[1]
  })
  await reader.cancel()
  assertConforms('#/components/schemas/Execution', JSON.parse(execution), 'a stream execution')

  const ids = await deadLetters(db.pool, 'failing', 3)
  const page = await call('GET', '/api/dlq', { path: '/api/dlq?observer=failing&limit=2' })
  assert.equal(page.body.items.length, 2)
  const next = await call('GET', '/api/dlq', { path: `/api/dlq?limit=2&cursor=${page.body.next_cursor}` })
  assert.equal(next.status, 200)
  const bad = await call('GET', '/api/dlq', { path: '/api/dlq?since=yesterday-ish' })
  assert.equal(bad.status, 400)
  assert.equal(bad.body.code, 'OB015')

  const one = `/api/dlq/${ids[0]}`
  const byDelivery = await call('GET', '/api/dlq', {
    path: `/api/dlq?delivery_id=${page.body.items[0].delivery_id}`,
  })
  assert.deepEqual(
    byDelivery.body.items.map((i: { id: string }) => i.id),
    [page.body.items[0].id],
  )
  const shown = await call('GET', '/api/dlq/{id}', { path: one })
  assert.equal(shown.body.attempt_history[0].status, 503)
  assert.equal(shown.body.request.kind, 'http')
  const missing = '/api/dlq/00000000-0000-4000-8000-000000000000'
  assert.equal((await call('GET', '/api/dlq/{id}', { path: missing })).status, 404)
  assert.equal((await call('POST', '/api/dlq/{id}/retry', { path: `${one}/retry` })).status, 200)
  assert.equal((await call('POST', '/api/dlq/{id}/retry', { path: `${missing}/retry` })).status, 404)
  assert.equal((await call('DELETE', '/api/dlq/{id}', { path: `/api/dlq/${ids[1]}` })).status, 200)
  assert.equal((await call('DELETE', '/api/dlq/{id}', { path: missing })).status, 404)

  // A source entry that could not become an event is a dead letter of no observer.
  const malformedId = '5d0c1e2a-8f00-4c1b-9a55-0d6b8e0f7a10'
  await deadLetterMalformed(worker.worker.queue, worker.worker.pool, {
    id: malformedId,
    source: 'legacy',
    key: '42',
    code: 'OB001',
    error: 'OB001: entry 42 has no entity',
    entity: null,
    entityId: null,
    entry: { op: 'x' },
  })
  const listed = await call('GET', '/api/dlq')
  assert.ok(listed.body.items.some((i: { id: string }) => i.id === malformedId))
  assert.equal((await call('GET', '/api/dlq/{id}', { path: `/api/dlq/${malformedId}` })).status, 200)

  assert.equal((await undescribed('GET', '/api/nothing-here')).code, 'not_found')
  const retried = await call('POST', '/api/dlq/retry', { body: JSON.stringify({ observer: 'failing' }) })
  assert.equal(retried.status, 200)
  assert.equal((await call('POST', '/api/dlq/retry', { body: '{not json' })).status, 400)
  const counted = await call('POST', '/api/dlq/purge', {
    body: JSON.stringify({ observer: 'failing', code: 'OB013', dry_run: true }),
  })
  assert.equal(typeof counted.body.matched, 'number')
  assert.equal((await call('POST', '/api/dlq/purge', { body: '{}' })).status, 400)
  const purged = await call('POST', '/api/dlq/purge', { body: JSON.stringify({ observer: 'nobody' }) })
  assert.deepEqual(purged.body, { deleted: 0 })
  // Last: the server closes the connection of a body it refuses.
  const huge = await call('POST', '/api/dlq/retry', {
    body: JSON.stringify({ observer: 'x'.repeat(1 << 21) }),
  })
  assert.equal(huge.status, 413)
  assert.equal(huge.body.code, 'body_too_large')
})

test('every operation in openapi.json was called', () => {
  for (const [template, item] of Object.entries(doc.paths)) {
    for (const method of Object.keys(item as object)) {
      if (method === 'parameters') continue
      const key = `${method.toUpperCase()} ${template}`
      assert.ok(called.has(key), `${key} was never called`)
    }
  }
})
