import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { TemplateError } from '../../src/errors/errors.ts'
import { BoundedLiquid, maxFilterItems } from '../../src/templates/limits.ts'
import { renderJson, renderString } from '../../src/templates/render.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api } from '../ops/helpers.ts'

const over = Array.from({ length: maxFilterItems + 1 }, (_, i) => ({ id: maxFilterItems - i, kind: i % 3 }))
const atLimit = over.slice(1)

test('every filter that walks an array refuses one over the limit with OB008', () => {
  for (const source of [
    '{{ items | sort | first }}',
    '{{ items | sort: "id" | first }}',
    '{{ items | sort_natural: "id" | first }}',
    '{{ items | where: "kind", 1 | size }}',
    '{{ items | reject: "kind", 1 | size }}',
    '{{ items | where_exp: "i", "i.kind == 1" | size }}',
    '{{ items | group_by: "kind" | size }}',
    '{{ items | map: "id" | size }}',
    '{{ items | sum: "id" }}',
    '{{ items | find: "id", -1 }}',
    '{{ items | uniq | size }}',
    '{{ items | reverse | size }}',
    '{{ items | json | size }}',
    '{{ "a" | split: "," | concat: items | size }}',
  ]) {
    assert.throws(
      () => renderString(source, { items: over }),
      (err: unknown) =>
        err instanceof TemplateError &&
        err.code === 'OB008' &&
        /filter "\w+" was given an array of 10001 items; filters take at most 10000/.test(err.message),
      source,
    )
  }
  assert.throws(() => renderJson({ first: '{{ items | sort }}' }, { items: over }), TemplateError)
})

test('arrays up to the limit render, and size, first and last take any array', () => {
  assert.equal(renderString('{{ items | sort: "id" | first | map: "id" }}', { items: atLimit }), '0')
  const huge = { items: Array.from({ length: 200 * maxFilterItems }, (_, i) => i) }
  assert.equal(
    renderString('{{ items | size }} {{ items | first }} {{ items | last }}', huge),
    '2000000 0 1999999',
  )
  assert.equal((renderJson({ v: '{{ items }}' }, huge) as { v: unknown[] }).v.length, 2_000_000)
})

test('a chain of filters in one output stops once the render limit has passed', () => {
  const liquid = new BoundedLiquid({ renderLimit: 50 })
  let calls = 0
  // Registered after construction, as an added filter module would be.
  liquid.registerFilter('busy', (v: unknown) => {
    calls++
    const until = performance.now() + 100
    while (performance.now() < until);
    return v
  })
  assert.throws(() => liquid.parseAndRenderSync('{{ 1 | busy | busy | busy }}'), /render limit exceeded/)
  assert.equal(calls, 1, 'the second call is refused before it runs')
  assert.throws(() => liquid.parseAndRenderSync('{{ x | busy }}', { x: over }), /at most 10000/)
})

let db: TestDatabase
let receiver: Receiver
let worker: TestWorker

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  await db.pool.query('create table baskets (id int primary key, items jsonb not null)')
  await db.pool.query('create table notes (id int primary key)')
  const dir = await observersDir({
    'baskets.json': {
      name: 'basket-cheapest',
      entity: 'baskets',
      events: ['INSERT'],
      actions: [
        {
          type: 'webhook',
          url: `${receiver.url}/baskets`,
          body_template: '{{ after.items | sort | first }}',
        },
      ],
      retry: { max_attempts: 3, initial_delay_ms: 100 },
    },
    'notes.json': {
      name: 'note-hook',
      entity: 'notes',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: `${receiver.url}/notes` }],
    },
  })
  worker = await runWorker(db.url, dir)
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

test('a row with a huge array fails its template at once with OB008 while the worker stays responsive', async () => {
  let healthAnswers = 0
  let polling = true
  const poller = (async () => {
    while (polling) {
      const r = await api(worker.worker, '/healthz').catch(() => undefined)
      if (r?.status === 200) healthAnswers++
    }
  })()
  try {
    await db.pool.query(
      `insert into baskets select 1, jsonb_agg((g * 7919) % 200000) from generate_series(1, 200000) g`,
    )
    const answersAtInsert = healthAnswers
    await db.pool.query('insert into notes select generate_series(1, 20)')
    const row = await eventually(
      async () => {
        const { rows } = await db.pool.query(
          `select last_error_code, last_error, attempts from observers.dlq where observer = 'basket-cheapest'`,
        )
        return rows[0]
      },
      60_000,
      'the basket dead-lettered',
    )
    assert.ok(healthAnswers > answersAtInsert, '/healthz answered while the delivery was in progress')
    assert.equal(row.last_error_code, 'OB008')
    assert.equal(row.attempts, 1, 'permanent: not retried')
    assert.match(row.last_error, /filter "sort" was given an array of 200000 items/)
  } finally {
    polling = false
    await poller
  }
  await receiver.waitFor(20)
  const paths = receiver.requests.map((r) => r.path)
  assert.equal(paths.filter((p) => p === '/notes').length, 20, 'each note delivered once')
  assert.equal(paths.filter((p) => p === '/baskets').length, 0, 'the basket never sent')
  assert.equal(
    worker.logs.records.filter((r) => JSON.stringify(r).includes('OB014')).length,
    0,
    'no attempt timed out',
  )
})
