import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfig } from '../../src/config/config.ts'
import { buildMatcher, jobId } from '../../src/dispatch/match.ts'
import type { ChangeEvent } from '../../src/event/event.ts'
import { parseObserver } from '../../src/observers/load.ts'
import type { Observer } from '../../src/observers/types.ts'
import { jobOf } from '../../src/queue/policy.ts'
import { sourceStats } from '../../src/sources/health.ts'
import { createSources, withKnownSources } from '../../src/sources/index.ts'

test('FRAISEQL_CHANGE_LOG_TABLE and MYSQL_SOURCE_URL configure the sources "fraiseql" and "mysql"', () => {
  const config = loadConfig({
    FRAISEQL_CHANGE_LOG_TABLE: 'core.tb_entity_change_log',
    FRAISEQL_CHANGE_LOG_COMMIT_WINDOW_MS: '60000',
    MYSQL_SOURCE_URL: 'mysql://root@127.0.0.1:3306/test',
    MYSQL_SOURCE_POLL_MS: '250',
  })
  assert.deepEqual(
    config.sources.map((s) => ({ ...s })),
    [
      {
        name: 'fraiseql',
        kind: 'fraiseql',
        url: undefined,
        table: 'core.tb_entity_change_log',
        pollMs: 1000,
        commitWindowMs: 60_000,
      },
      {
        name: 'mysql',
        kind: 'mysql',
        url: 'mysql://root@127.0.0.1:3306/test',
        table: 'observers_change_log',
        pollMs: 250,
        commitWindowMs: 120_000,
      },
    ],
  )
  assert.deepEqual(
    createSources(config).map((s) => [s.name, s.kind, s.wake]),
    [
      ['changelog', 'changelog', 'notify'],
      ['fraiseql', 'fraiseql', 'poll'],
      ['mysql', 'mysql', 'poll'],
    ],
  )
})

test('OBSERVERS_SOURCES names further sources, each with OBSERVERS_SOURCE_<NAME>_* settings', () => {
  const config = loadConfig({
    OBSERVERS_SOURCES: 'fraiseql, shop:mysql',
    OBSERVERS_SOURCE_SHOP_URL: 'mariadb://app:secret@db/shop',
    OBSERVERS_SOURCE_SHOP_TABLE: 'audit.changes',
  })
  assert.deepEqual(
    config.sources.map((s) => [s.name, s.kind, s.table, s.url]),
    [
      ['fraiseql', 'fraiseql', 'core.tb_entity_change_log', undefined],
      ['shop', 'mysql', 'audit.changes', 'mariadb://app:secret@db/shop'],
    ],
  )
})

test('source configuration errors name the variable (OB001)', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ OBSERVERS_SOURCES: 'shop:oracle' }, /OB001: .*source "shop" has unknown kind "oracle"/],
    [{ OBSERVERS_SOURCES: 'shop:mysql' }, /OB001: source "shop" needs OBSERVERS_SOURCE_SHOP_URL/],
    [{ OBSERVERS_SOURCES: 'changelog:fraiseql' }, /OB001: OBSERVERS_SOURCES: "changelog" is not a usable/],
    [{ OBSERVERS_SOURCES: 'Shop-1:fraiseql' }, /OB001: OBSERVERS_SOURCES: "Shop-1" is not a usable/],
    [
      { OBSERVERS_SOURCES: 'mysql:fraiseql', MYSQL_SOURCE_URL: 'mysql://x/y' },
      /source "mysql" is configured twice/,
    ],
    [
      { FRAISEQL_CHANGE_LOG_TABLE: 't', FRAISEQL_CHANGE_LOG_COMMIT_WINDOW_MS: '10' },
      /COMMIT_WINDOW_MS must be/,
    ],
  ]
  for (const [env, message] of cases) assert.throws(() => loadConfig(env), message, JSON.stringify(env))
})

function observer(json: Record<string, unknown>): Observer {
  const parsed = parseObserver(
    '/obs/o.json',
    JSON.stringify({ events: ['INSERT'], actions: [{ type: 'log' }], ...json }),
  )
  assert.ok('observer' in parsed && parsed.observer, JSON.stringify(parsed))
  return parsed.observer
}

test('an observer reads our change log unless it names a source; only ours normalises the entity', () => {
  const own = observer({ name: 'own', entity: 'orders' })
  assert.deepEqual([own.source, own.entity], ['changelog', 'public.orders'])
  const other = observer({ name: 'other', source: 'fraiseql', entity: 'Order' })
  assert.deepEqual([other.source, other.entity], ['fraiseql', 'Order'])
  const bad = parseObserver(
    '/obs/b.json',
    JSON.stringify({
      name: 'b',
      source: 'My Source',
      entity: 'x',
      events: ['INSERT'],
      actions: [{ type: 'log' }],
    }),
  )
  assert.ok('problems' in bad)
  assert.equal(bad.problems[0]?.path, '/source')
})

test('an observer naming an unconfigured source is reported at /source and left out', () => {
  const sources = createSources(loadConfig({ FRAISEQL_CHANGE_LOG_TABLE: 'core.t' }))
  const known = observer({ name: 'known', source: 'fraiseql', entity: 'Order' })
  const unknown = observer({ name: 'unknown', source: 'shop', entity: 'shop.orders' })
  const result = withKnownSources({ observers: [known, unknown], problems: [] }, sources)
  assert.deepEqual(
    result.observers.map((o) => o.name),
    ['known'],
  )
  assert.equal(result.problems.length, 1)
  assert.equal(result.problems[0]?.path, '/source')
  assert.equal(result.problems[0]?.code, 'OB001')
  assert.match(
    result.problems[0]?.message ?? '',
    /source "shop" is not configured \(configured: changelog, fraiseql/,
  )
})

test('a change matches only the observers of its source; job ids of other sources never collide with ours', () => {
  const mine = observer({ name: 'mine', entity: 'public.orders' })
  const theirs = observer({ name: 'theirs', source: 'fraiseql', entity: 'public.orders' })
  const match = buildMatcher([mine, theirs], jobOf)
  const event: ChangeEvent = {
    id: '6f1c1d1e-0000-4000-8000-000000000001',
    seq: 7,
    event: 'INSERT',
    entity: 'public.orders',
    entity_id: '1',
    before: null,
    after: { id: 1 },
    changed: [],
    tenant_id: null,
    actor_id: null,
    txid: '1',
    created_at: '2025-01-01T00:00:00Z',
  }
  assert.deepEqual(
    match(event).map((j) => j.delivery.observer),
    ['mine'],
  )
  assert.deepEqual(
    match(event, 'fraiseql').map((j) => j.delivery.observer),
    ['theirs'],
  )
  assert.deepEqual(match(event, 'mysql'), [])
  assert.equal(jobId(7, 'o', 0), jobId(7, 'o', 0, 'changelog'), 'our own ids are unchanged')
  assert.notEqual(jobId(7, 'o', 0), jobId(7, 'o', 0, 'fraiseql'))
  assert.equal(match(event, 'fraiseql')[0]?.jobId, jobId(7, 'theirs', 0, 'fraiseql'))
})

test('error rate: failed passes over all passes of the last five minutes', () => {
  let now = Date.parse('2025-01-01T00:00:00Z')
  const stats = sourceStats(() => now)
  assert.equal(stats.read().errorRate, null)
  stats.passed()
  stats.passed()
  stats.failed('OB009: boom')
  stats.passed()
  assert.equal(stats.read().errorRate, 0.25)
  assert.equal(stats.read().errors, 1)
  assert.equal(stats.read().lastError, 'OB009: boom')
  now += 6 * 60_000
  stats.passed()
  assert.equal(stats.read().errorRate, 0, 'older passes have aged out')
  assert.equal(stats.read().errors, 1, 'the total stays')
  stats.malformed(2)
  assert.equal(stats.read().malformed, 2)
})
