import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadObservers } from '../../src/observers/load.ts'
import { observersDir } from '../helpers/worker.ts'

const good = {
  name: 'good',
  entity: 'orders',
  events: ['UPDATE'],
  actions: [{ type: 'webhook', url: 'http://127.0.0.1:9/x' }],
}

test('a valid observer loads with defaults applied', async () => {
  const { observers, problems } = await loadObservers(await observersDir({ 'good.json': good }))
  assert.deepEqual(problems, [])
  assert.equal(observers.length, 1)
  const o = observers[0]!
  assert.equal(o.entity, 'public.orders')
  assert.deepEqual([...o.events], ['UPDATE'])
  assert.deepEqual(o.retry, {
    max_attempts: 5,
    initial_delay_ms: 1000,
    max_delay_ms: 300000,
    backoff_strategy: 'exponential',
  })
  assert.equal(o.onFailure, 'dlq')
  assert.equal(o.ordering, 'none')
})

test('bad files are reported with code, file and JSON path; good files still load', async () => {
  const dir = await observersDir({
    'good.json': good,
    'unknown-type.json': { ...good, name: 'a', actions: [{ type: 'fax', number: '1' }] },
    'bad-url.json': { ...good, name: 'b', actions: [{ type: 'webhook' }] },
    'missing.json': { name: 'c', entity: 'orders', actions: [{ type: 'log' }] },
    'wrong-types.json': { ...good, name: 'd', events: 'UPDATE', retry: { max_attempts: 'five' } },
    'zz-dup.json': { ...good },
    'broken.json': '{ "name": "e",\n  "entity": }',
    'bad-condition.json': { ...good, name: 'f', condition: 'total >> 5' },
    'bad-template.json': { ...good, name: 'g', actions: [{ type: 'log', message_template: '{{ status ' }] },
  })
  const { observers, problems } = await loadObservers(dir)
  assert.deepEqual(
    observers.map((o) => o.name),
    ['good'],
  )
  const by = (file: string) => problems.filter((p) => p.file.endsWith(`/${file}`))
  assert.deepEqual(
    by('unknown-type.json').map((p) => [p.code, p.path]),
    [['OB011', '/actions/0/type']],
  )
  assert.ok(by('bad-url.json').every((p) => p.code === 'OB005' && p.path === '/actions/0'))
  assert.match(by('bad-url.json')[0]!.message, /url/)
  assert.deepEqual(
    by('missing.json').map((p) => [p.code, p.path]),
    [['OB001', '/']],
  )
  assert.match(by('missing.json')[0]!.message, /missing required property "events"/)
  const wrong = by('wrong-types.json')
    .map((p) => p.path)
    .sort()
  assert.deepEqual(wrong, ['/events', '/retry/max_attempts'])
  assert.match(by('zz-dup.json')[0]?.message ?? '', /duplicate observer name "good"/)
  assert.match(by('broken.json')[0]!.message, /invalid JSON.*line 2/)
  assert.deepEqual(
    by('bad-condition.json').map((p) => [p.code, p.path]),
    [['OB003', '/condition']],
  )
  assert.deepEqual(
    by('bad-template.json').map((p) => [p.code, p.path]),
    [['OB008', '/actions/0']],
  )
  for (const p of problems) {
    assert.match(p.code, /^OB0\d\d$/)
    assert.match(p.message, /^\S+\.json/)
  }
})

test('a file that starts with a byte-order mark loads', async () => {
  const { observers, problems } = await loadObservers(
    await observersDir({ 'bom.json': `\uFEFF${JSON.stringify(good)}` }),
  )
  assert.deepEqual(problems, [])
  assert.equal(observers[0]?.name, 'good')
})

test('a disabled observer is skipped without a problem', async () => {
  const { observers, problems } = await loadObservers(
    await observersDir({ 'x.json': { ...good, enabled: false } }),
  )
  assert.equal(observers.length, 0)
  assert.equal(problems.length, 0)
})
