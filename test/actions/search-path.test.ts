import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { kindObserver, startActionWorker } from '../helpers/action-worker.ts'
import type { TestDatabase } from '../helpers/db.ts'
import { type FakeSearch, startFakeElasticsearch, startFakeMeilisearch } from '../helpers/fake-search.ts'
import { completedOutput, dlqRow } from '../helpers/outcomes.ts'
import type { TestWorker } from '../helpers/worker.ts'

const tableSql = 'create table products (id text primary key, kind text not null, name text)'

const observers = [
  kindObserver('products', 'remove', { type: 'search', index: 'products', operation: 'delete' }),
  kindObserver('products', 'upsert', { type: 'search', index: 'products' }),
  kindObserver('products', 'templated', {
    type: 'search',
    index: 'products',
    operation: 'delete',
    id_template: '{{ name }}',
  }),
]

async function assertRefused(db: TestDatabase, observer: string, entityId: string): Promise<void> {
  const row = await dlqRow(db.pool, observer, entityId)
  assert.equal(row.last_error_code, 'OB008', row.last_error)
  assert.equal(row.attempts, 1, 'a dot segment is permanent: never retried')
  assert.match(row.last_error, /cannot be a URL path segment/)
}

for (const [name, start] of [
  ['Elasticsearch', startFakeElasticsearch],
  ['Meilisearch', startFakeMeilisearch],
] as const) {
  describe(`search on ${name}: a row id "." or ".." is one path segment or nothing`, () => {
    let fake: FakeSearch
    let db: TestDatabase
    let worker: TestWorker

    before(async () => {
      fake = await start()
      const provider = name === 'Elasticsearch' ? 'elasticsearch' : 'meilisearch'
      ;({ db, worker } = await startActionWorker(tableSql, observers, {
        SEARCH_URL: fake.url,
        SEARCH_PROVIDER: provider,
      }))
    })

    after(async () => {
      await worker?.stop()
      await db?.drop()
      await fake?.close()
    })

    test('dead-letters the delivery with OB008 and never sends a request for it', async () => {
      fake.indexes.set('products', new Map([['keep', { id: 'keep' }]]))
      await db.pool.query(`insert into products values ('..', 'remove', null), ('.', 'remove', null)`)
      await db.pool.query(`insert into products values ('x..', 'upsert', null), ('t1', 'templated', '..')`)
      await assertRefused(db, 'remove', '..')
      await assertRefused(db, 'remove', '.')
      await assertRefused(db, 'templated', 't1')
      // A later, ordinary delivery went through: the refusals above were decided before any request.
      await completedOutput(db.pool, 'upsert', 'x..')
      const deletes = fake.requests.filter((r) => r.method === 'DELETE')
      assert.deepEqual(deletes, [], 'no DELETE reached the search engine')
      assert.ok(
        fake.requests.every(
          (r) => r.path.includes('/documents') || r.path.includes('/_doc/') || r.path.startsWith('/tasks/'),
        ),
        `every request addresses a document: ${fake.requests.map((r) => `${r.method} ${r.path}`).join(', ')}`,
      )
      assert.ok(fake.indexes.get('products')?.has('keep'), 'the index and its documents are intact')
    })
  })
}
