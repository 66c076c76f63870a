import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type DurableReceiver, startDurableReceiver } from '../helpers/durable-receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

let db: TestDatabase
let receiver: DurableReceiver
let worker: TestWorker

const note =
  'family 👩‍👩‍👧‍👦 flag 🇮🇱 שלום עולם مرحبا e\u0301 \u2028\u2029 "quoted" back\\slash tab\t nl\n \u001f'
// 5 MB of mixed-width text: 1-, 2-, 3- and 4-byte UTF-8 sequences and right-to-left runs.
const big = 'aß€😀שׁ'.repeat((5 * 1024 * 1024) / 14)
const doc = `{"n": 123456789012345678901234567890, "f": 0.1000000000000000000001, "e": 1e400,
  "small": -0.0000000000000000000000000001, "arr": [1, 9007199254740993, 2.50], "s": ${JSON.stringify(note)}}`

before(async () => {
  db = await createTestDatabase()
  receiver = await startDurableReceiver()
  await db.pool.query(`create table exact (
    id bigint primary key, amount numeric(30,10), at timestamptz, doc jsonb, tags text[],
    matrix int[][], raw bytea, big text, note text)`)
  const action = (path: string, body_template?: unknown) => ({
    type: 'webhook',
    url: `${receiver.url}/${path}`,
    headers: { 'x-delivery-id': '{{ delivery_id }}' },
    ...(body_template === undefined ? {} : { body_template }),
  })
  const dir = await observersDir({
    'exact.json': {
      name: 'exact',
      entity: 'exact',
      events: ['INSERT', 'UPDATE', 'DELETE'],
      actions: [
        action('default'),
        action('typed', {
          id: '{{ after.id }}',
          amount: '{{ after.amount }}',
          doc: '{{ after.doc }}',
          n: '{{ after.doc.n }}',
          tags: '{{ after.tags }}',
          raw: '{{ after.raw }}',
          at: '{{ after.at }}',
          note: '{{ after.note }}',
          big: '{{ after.big }}',
          mixed: 'id={{ after.id }} amount={{ after.amount }} n={{ after.doc.n }}',
        }),
        action('text', '{{ after.id }}|{{ after.amount }}|{{ after.doc | json }}|{{ after.note }}'),
      ],
    },
  })
  worker = await runWorker(db.url, dir)
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

/** Parses JSON keeping every number as its exact source text. */
function lossless(text: string): unknown {
  return JSON.parse(text, (_key, value, ctx) => (typeof value === 'number' ? { number: ctx.source } : value))
}

async function rowJson(id: string): Promise<string> {
  const { rows } = await db.pool.query('select to_jsonb(e)::text as j from exact e where id = $1', [id])
  return rows[0].j
}

function deliveredTo(path: string, event: string) {
  return receiver.delivered().filter((r) => r.path === `/${path}` && r.body.includes(`"event":"${event}"`))
}

const insertSql = `insert into exact values ($1, $2, '2024-02-29 23:59:59.123456+05:30', $3::jsonb,
  array['a', 'b,c', 'd"e', null, 'שלום'], '{{1,2},{3,4}}', '\\x00ff10'::bytea, $4, $5)`

test('the default body carries every type exactly as Postgres renders it', async () => {
  const id = '9007199254740993'
  await db.pool.query(insertSql, [id, '12345678901234567890.1234567890', doc, big, note])
  await eventually(() => deliveredTo('default', 'INSERT').length > 0, 30_000, 'default body')
  const body = deliveredTo('default', 'INSERT')[0]!.body
  const expected = lossless(await rowJson(id))
  assert.deepEqual((lossless(body) as { after: unknown }).after, expected, 'row image equals to_jsonb(row)')
  assert.match(body, /"id":9007199254740993,/)
  assert.match(body, /"amount":12345678901234567890\.1234567890,/)
  assert.match(body, /"n":123456789012345678901234567890,/)
  assert.match(body, /"f":0\.1000000000000000000001,/)
  assert.match(body, /"e":1(0{400}),/)
  assert.match(body, /"arr":\[1,9007199254740993,2\.50\]/)
  assert.match(body, /"entity_id":"9007199254740993"/)
  const after = JSON.parse(body).after
  assert.equal(after.note, note)
  assert.equal(after.big, big, '5 MB of text arrives intact')
  assert.equal(after.raw, '\\x00ff10')
  assert.deepEqual(after.tags, ['a', 'b,c', 'd"e', null, 'שלום'])
  assert.deepEqual(after.matrix, [
    [1, 2],
    [3, 4],
  ])
  assert.match(after.at, /^2024-0[23]-\d\dT\d\d:\d\d:59\.123456[+-]\d\d:\d\d$/)
})

test('templates keep numbers exact, in typed leaves and in text', async () => {
  const arrived = (path: string) => receiver.delivered().some((r) => r.path === path)
  await eventually(() => arrived('/typed') && arrived('/text'), 30_000, 'templated bodies')
  const typed = receiver.delivered().find((r) => r.path === '/typed')!.body
  const row = JSON.parse(await rowJson('9007199254740993'))
  assert.ok(
    typed.startsWith(
      '{"id":9007199254740993,"amount":12345678901234567890.1234567890,"doc":{"e":1' +
        '0'.repeat(400) +
        ',"f":0.1000000000000000000001,"n":123456789012345678901234567890,',
    ),
    typed.slice(0, 300),
  )
  const expected = lossless(await rowJson('9007199254740993')) as { doc: unknown }
  assert.deepEqual((lossless(typed) as { doc: unknown }).doc, expected.doc)
  const parsed = JSON.parse(typed)
  assert.match(typed, /"n":123456789012345678901234567890,/)
  assert.deepEqual(parsed.tags, row.tags)
  assert.equal(parsed.raw, '\\x00ff10')
  assert.equal(parsed.at, row.at)
  assert.equal(parsed.note, note)
  assert.equal(parsed.big, big)
  assert.equal(
    parsed.mixed,
    'id=9007199254740993 amount=12345678901234567890.1234567890 n=123456789012345678901234567890',
  )

  const text = receiver.delivered().find((r) => r.path === '/text')!.body
  assert.ok(text.startsWith('9007199254740993|12345678901234567890.1234567890|{"e":1'), text.slice(0, 80))
  assert.ok(text.endsWith(`|${note}`))
})

test('update and delete images are exact too, before and after', async () => {
  const id = '9223372036854775807'
  await db.pool.query(insertSql, [id, '-0.0000000001', doc, 'x', note])
  const beforeUpdate = lossless(await rowJson(id))
  await db.pool.query(
    `update exact set amount = 99999999999999999999.9999999999, note = 'ok' where id = $1`,
    [id],
  )
  const afterUpdate = lossless(await rowJson(id))
  await db.pool.query('delete from exact where id = $1', [id])
  await eventually(() => deliveredTo('default', 'DELETE').length > 0, 30_000, 'delete body')
  const update = lossless(deliveredTo('default', 'UPDATE')[0]!.body) as Record<string, unknown>
  assert.deepEqual(update.before, beforeUpdate)
  assert.deepEqual(update.after, afterUpdate)
  assert.deepEqual(update.changed, ['amount', 'note'])
  const del = lossless(deliveredTo('default', 'DELETE')[0]!.body) as Record<string, unknown>
  assert.deepEqual(del.before, afterUpdate)
  assert.equal(del.after, null)
  assert.match(deliveredTo('default', 'DELETE')[0]!.body, /"entity_id":"9223372036854775807"/)
})
