import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type SearchAction, search } from '../../src/actions/search.ts'
import { actionContext, changeEvent, delivery } from '../helpers/action-context.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type FakeSearch, startFakeElasticsearch, startFakeMeilisearch } from '../helpers/fake-search.ts'
import { assertNoSecrets, completedOutput, deliveryIdOf, dlqCount, dlqRow } from '../helpers/outcomes.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

const retry = { max_attempts: 3, initial_delay_ms: 200, max_delay_ms: 5000, backoff_strategy: 'fixed' }

function observer(name: string, action: Record<string, unknown>) {
  const events = ['INSERT', 'UPDATE', 'DELETE']
  return { name, entity: 'products', events, condition: `kind = '${name}'`, actions: [action], retry }
}

async function setup(files: Record<string, unknown>, env: Record<string, string>) {
  const db = await createTestDatabase()
  await db.pool.query(
    'create table products (id bigint primary key, kind text not null, name text, price numeric(30,10))',
  )
  // Few jobs in flight per type: two test files' workers must fit in Postgres's connection limit.
  const worker = await runWorker(db.url, await observersDir(files), { OBSERVERS_CONCURRENCY: '2', ...env })
  return { db, worker }
}

async function deliveredOutputs(db: TestDatabase, observer: string) {
  const { rows } = await db.pool.query(
    `select output from observers.deliveries where outcome = 'delivered' and observer = $1
      order by delivered_at`,
    [observer],
  )
  return rows.map((r) => r.output as Record<string, unknown>)
}

describe('search on Elasticsearch', () => {
  let es: FakeSearch
  let db: TestDatabase
  let worker: TestWorker
  const requestsFor = (path: string) => es.requests.filter((r) => r.path === path)

  before(async () => {
    es = await startFakeElasticsearch()
    ;({ db, worker } = await setup(
      {
        'plain.json': observer('plain', { type: 'search', index: 'products' }),
        'custom.json': observer('custom', {
          type: 'search',
          index: 'catalog-{{ kind }}',
          id_template: 'sku-{{ id }}',
          document_template: { title: '{{ name | upcase }}', price: '{{ price }}', by: '{{ actor_id }}' },
        }),
        'flaky.json': observer('flaky', { type: 'search', index: 'products' }),
        'rejected.json': observer('rejected', { type: 'search', index: 'products' }),
        'broken.json': observer('broken', {
          type: 'search',
          index: 'products',
          document_template: "{% include 'no-such-partial' %}",
        }),
      },
      { SEARCH_URL: es.url, SEARCH_API_KEY: 'es-api-key-1' },
    ))
  })

  after(async () => {
    await worker?.stop()
    await db?.drop()
    await es?.close()
  })

  test('indexes an inserted row as the document, exact numbers intact, with the API key', async () => {
    await db.pool.query(`insert into products values (9007199254740993, 'plain', 'Lamp', 12.5000000000)`)
    const put = await eventually(() => requestsFor('/products/_doc/9007199254740993')[0])
    assert.equal(put?.method, 'PUT')
    assert.equal(put?.headers.authorization, 'ApiKey es-api-key-1')
    assert.equal(
      put?.headers['x-opaque-id'],
      await deliveryIdOf(db.pool, 'plain'),
      'labelled with the delivery_id',
    )
    assert.equal(put?.headers['content-type'], 'application/json')
    assert.equal(
      put?.body,
      '{"id":9007199254740993,"kind":"plain","name":"Lamp","price":12.5000000000}',
      'the row, numbers as Postgres wrote them',
    )
  })

  test('an update re-indexes the row and a delete removes its document', async () => {
    const path = '/products/_doc/9007199254740993'
    await db.pool.query(`update products set name = 'Desk lamp' where id = 9007199254740993`)
    await eventually(() => requestsFor(path).length === 2)
    const doc = es.indexes.get('products')?.get('9007199254740993') as Record<string, unknown>
    assert.equal(doc.name, 'Desk lamp')
    assert.match(requestsFor(path)[1]!.body, /"name":"Desk lamp"/)
    await db.pool.query('delete from products where id = 9007199254740993')
    await eventually(() => requestsFor(path).length === 3)
    assert.equal(requestsFor(path)[2]?.method, 'DELETE')
    assert.equal(requestsFor(path)[2]?.body, '')
    assert.equal(es.indexes.get('products')?.has('9007199254740993'), false)
  })

  test('deleting a document that is already gone (404) counts as done', async () => {
    await db.pool.query(`insert into products values (2, 'plain', 'Chair', 40)`)
    await eventually(() => es.indexes.get('products')?.has('2'))
    es.indexes.get('products')?.delete('2')
    await db.pool.query('delete from products where id = 2')
    const outputs = await eventually(async () => {
      const jobs = await deliveredOutputs(db, 'plain')
      return jobs.find((o) => o.operation === 'delete' && o.id === '2')
    })
    assert.equal(outputs.status, 404)
    assert.equal(outputs.result, 'not_found')
  })

  test('renders the index, id and document templates (a lone expression keeps its type)', async () => {
    const client = await db.pool.connect()
    try {
      await client.query('begin')
      await client.query(`set local observers.actor = 'user-7'`)
      await client.query(`insert into products values (3, 'custom', 'Sofa', 1999.99)`)
      await client.query('commit')
    } finally {
      client.release()
    }
    const put = await eventually(() => requestsFor('/catalog-custom/_doc/sku-3')[0])
    assert.equal(put?.body, '{"title":"SOFA","price":1999.9900000000,"by":"user-7"}')
  })

  test('a 503 with Retry-After is retried after the pause the engine asked for, then indexed', async () => {
    es.interrupt([{ status: 503, headers: { 'retry-after': '1' }, body: { error: 'unavailable' } }])
    await db.pool.query(`insert into products values (4, 'flaky', 'Rug', 80)`)
    await eventually(() => es.indexes.get('products')?.has('4'))
    const puts = requestsFor('/products/_doc/4')
    assert.equal(puts.length, 2)
    assert.ok(puts[1]!.at - puts[0]!.at >= 950, 'Retry-After: 1 honoured')
    assert.equal(await dlqCount(db.pool, 'flaky'), 0)
  })

  test('a 400 goes to the DLQ at once with the engine reason and no secret', async () => {
    es.interrupt([{ status: 400, body: { error: { type: 'mapper_parsing_exception' }, status: 400 } }])
    await db.pool.query(`insert into products values (5, 'rejected', 'Vase', 15)`)
    const row = await dlqRow(db.pool, 'rejected')
    assert.equal(row.attempts, 1)
    assert.equal(row.last_error_code, 'OB007')
    assert.match(row.last_error, /elasticsearch index products\/5 answered 400: .*mapper_parsing_exception/)
    assert.equal(requestsFor('/products/_doc/5').length, 1)
    await assertNoSecrets(db.pool, worker.logs, ['es-api-key-1'])
  })

  test('a template that fails to render dead-letters with OB008 and sends nothing', async () => {
    await db.pool.query(`insert into products values (6, 'broken', 'Shelf', 70)`)
    const row = await dlqRow(db.pool, 'broken')
    assert.equal(row.last_error_code, 'OB008')
    assert.equal(row.attempts, 1)
    assert.match(row.last_error, /no-such-partial/)
    assert.equal(requestsFor('/products/_doc/6').length, 0)
  })
})

describe('search on Meilisearch', () => {
  let meili: FakeSearch
  let db: TestDatabase
  let worker: TestWorker

  before(async () => {
    meili = await startFakeMeilisearch()
    ;({ db, worker } = await setup(
      {
        'plain.json': observer('plain', { type: 'search', index: 'products' }),
        'keyed.json': observer('keyed', {
          type: 'search',
          index: 'products-by-sku',
          primary_key: 'sku',
          document_template: { title: '{{ name }}' },
        }),
        'hiccup.json': observer('hiccup', { type: 'search', index: 'products' }),
        'invalid.json': observer('invalid', { type: 'search', index: 'products' }),
      },
      { SEARCH_URL: `${meili.url}/`, SEARCH_PROVIDER: 'meilisearch', SEARCH_API_KEY: 'meili-master-key' },
    ))
  })

  after(async () => {
    await worker?.stop()
    await db?.drop()
    await meili?.close()
  })

  const posts = () => meili.requests.filter((r) => r.method === 'POST')

  test('adds the row as a document and completes only once its task has succeeded', async () => {
    await db.pool.query(`insert into products values (9007199254740993, 'plain', 'Lamp', 12.5)`)
    await eventually(() => meili.indexes.get('products')?.has('9007199254740993'))
    const [post] = posts()
    assert.equal(post?.path, '/indexes/products/documents')
    assert.equal(post?.query.get('primaryKey'), 'id')
    assert.equal(post?.headers.authorization, 'Bearer meili-master-key')
    assert.equal(post?.body, '[{"id":9007199254740993,"kind":"plain","name":"Lamp","price":12.5000000000}]')
    const output = await completedOutput(db.pool, 'plain', '9007199254740993')
    assert.equal(output.task_uid, 0)
    assert.equal(output.result, 'succeeded')
    const polls = meili.requests.filter((r) => r.path === '/tasks/0')
    assert.equal(polls.length, 3, 'polled through enqueued and processing to succeeded')
    assert.ok(polls.every((p) => p.headers.authorization === 'Bearer meili-master-key'))
  })

  test('a delete removes the document by its URL-encoded id', async () => {
    await db.pool.query('delete from products where id = 9007199254740993')
    await eventually(() => meili.indexes.get('products')?.has('9007199254740993') === false)
    const del = meili.requests.find((r) => r.method === 'DELETE')
    assert.equal(del?.path, '/indexes/products/documents/9007199254740993')
  })

  test('fills a custom primary key with the id when the document template lacks it', async () => {
    await db.pool.query(`insert into products values (7, 'keyed', 'Stool', 30)`)
    const doc = await eventually(() => meili.indexes.get('products-by-sku')?.get('7'))
    assert.deepEqual(doc, { title: 'Stool', sku: '7' })
    assert.equal(posts().at(-1)?.query.get('primaryKey'), 'sku')
  })

  test('a task that fails with an internal error is retried, then succeeds', async () => {
    meili.failTasks([{ code: 'internal', type: 'internal', message: 'disk hiccup' }])
    await db.pool.query(`insert into products values (8, 'hiccup', 'Bench', 90)`)
    await eventually(() => meili.indexes.get('products')?.has('8'))
    assert.equal(posts().filter((p) => p.body.includes('"Bench"')).length, 2)
    const retried = worker.logs.records.find((r) => r.observer === 'hiccup' && r.outcome === 'retry')
    assert.match(String(retried?.error), /task \d+ failed: internal \(internal\): disk hiccup/)
  })

  test('a task that fails as an invalid request goes to the DLQ without a retry', async () => {
    meili.failTasks([{ code: 'invalid_document_fields', type: 'invalid_request', message: 'bad field' }])
    await db.pool.query(`insert into products values (9, 'invalid', 'Cup', 5)`)
    const row = await dlqRow(db.pool, 'invalid')
    assert.equal(row.attempts, 1)
    assert.equal(row.last_error_code, 'OB007')
    assert.match(row.last_error, /invalid_document_fields \(invalid_request\): bad field/)
    assert.equal(posts().filter((p) => p.body.includes('"Cup"')).length, 1)
  })
})

describe('search without SEARCH_URL', () => {
  let db: TestDatabase
  let worker: TestWorker

  before(async () => {
    ;({ db, worker } = await setup(
      { 'plain.json': observer('plain', { type: 'search', index: 'products' }) },
      {},
    ))
  })

  after(async () => {
    await worker?.stop()
    await db?.drop()
  })

  test('is reported at startup and its deliveries fail permanently with OB005', async () => {
    const warning = worker.logs.records.find((r) => r.code === 'OB005' && r.variable === 'SEARCH_URL')
    assert.equal(warning?.observer, 'plain')
    await db.pool.query(`insert into products values (1, 'plain', 'Lamp', 1)`)
    const row = await dlqRow(db.pool, 'plain')
    assert.equal(row.last_error_code, 'OB005')
    assert.equal(row.attempts, 1)
    assert.match(row.last_error, /SEARCH_URL is not set/)
  })
})

describe('search endpoint', () => {
  let es: FakeSearch
  before(async () => {
    es = await startFakeElasticsearch()
  })
  after(() => es.close())

  const action: SearchAction = { type: 'search', index: 'people', id_template: '{{ after.email }}' }
  const event = changeEvent({ after: { email: 'ann+1@example.com/x', name: 'Ann' } })

  test('basic auth from SEARCH_USERNAME and SEARCH_PASSWORD, with the id URL-encoded', async () => {
    const env = { SEARCH_URL: es.url, SEARCH_USERNAME: 'elastic', SEARCH_PASSWORD: 'pw:1' }
    await search.execute(action, actionContext(delivery(action, event), env))
    const req = es.requests.at(-1)
    assert.equal(req?.path, '/people/_doc/ann%2B1%40example.com%2Fx')
    assert.equal(req?.headers.authorization, `Basic ${Buffer.from('elastic:pw:1').toString('base64')}`)
  })

  test('keeps the path of SEARCH_URL in front of the document path', async () => {
    const env = { SEARCH_URL: `${es.url}/cluster-a/`, SEARCH_API_KEY: 'k' }
    await search.execute(action, actionContext(delivery(action, event), env))
    assert.equal(es.requests.at(-1)?.path, '/cluster-a/people/_doc/ann%2B1%40example.com%2Fx')
  })

  test('credentials in SEARCH_URL move to a basic auth header and stay out of errors', async () => {
    const url = new URL(es.url)
    url.username = 'reader'
    url.password = 's3cret'
    es.interrupt([{ status: 403, body: { error: 'forbidden' } }])
    const ctx = actionContext(delivery(action, event), {
      SEARCH_URL: url.toString(),
      SEARCH_PROVIDER: 'opensearch',
    })
    const err = await search.execute(action, ctx).then(
      () => assert.fail('a 403 must fail'),
      (e: Error & { retryable?: boolean }) => e,
    )
    assert.equal(err.retryable, false)
    assert.doesNotMatch(err.message, /s3cret/)
    assert.equal(
      es.requests.at(-1)?.headers.authorization,
      `Basic ${Buffer.from('reader:s3cret').toString('base64')}`,
    )
  })
})
