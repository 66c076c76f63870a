import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { TemplateError } from '../../src/errors/errors.ts'
import type { Delivery } from '../../src/event/delivery.ts'
import { parseExact } from '../../src/json/exact.ts'
import { renderJson, renderString, templateScope } from '../../src/templates/render.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'

const canary = 'sandbox-canary-7f3a'
process.env.SANDBOX_CANARY = canary

function scope(): Record<string, unknown> {
  const after = parseExact('{"id": 9007199254740993, "status": "new", "n": 100000000}') as Record<
    string,
    unknown
  >
  const delivery = {
    delivery_id: 'd',
    observer: 'o',
    action_index: 0,
    action: { type: 'log' },
    retry: { max_attempts: 1, initial_delay_ms: 0, max_delay_ms: 0, backoff_strategy: 'fixed' },
    on_failure: 'dlq',
    event: {
      id: 'e',
      seq: 1,
      event: 'INSERT',
      entity: 'public.t',
      entity_id: '1',
      before: null,
      after,
      changed: [],
      tenant_id: null,
      actor_id: null,
      txid: '1',
      created_at: new Date(0).toISOString(),
    },
  } satisfies Delivery
  return templateScope(delivery, 1)
}

function renderError(source: string): TemplateError {
  try {
    renderString(source, scope())
  } catch (err) {
    assert.ok(err instanceof TemplateError, `TemplateError, got ${String(err)}`)
    assert.equal(err.code, 'OB008')
    return err
  }
  assert.fail(`${source} rendered`)
}

test('templates cannot reach the environment or Node globals', () => {
  for (const source of [
    '{{ process.env.SANDBOX_CANARY }}',
    '{{ env.SANDBOX_CANARY }}',
    '{{ process }}{{ global }}{{ globalThis }}{{ require }}{{ module }}{{ Buffer }}',
    '{% for kv in process.env %}{{ kv }}{% endfor %}',
  ]) {
    assert.equal(renderString(source, scope()), '', source)
  }
  assert.deepEqual(renderJson({ v: '{{ process.env.SANDBOX_CANARY }}' }, scope()), { v: null })
})

test('{% include %}, {% render %} and {% layout %} find no files', () => {
  for (const file of [
    '/etc/passwd',
    'package.json',
    '../../package.json',
    'observer.schema.json',
    'src/config',
  ]) {
    for (const tag of ['include', 'render', 'layout']) {
      const err = renderError(`{% ${tag} '${file}' %}`)
      assert.doesNotMatch(err.message, /root:|pg-observers/, 'no file content leaks into the error')
    }
  }
  renderError('{% include status %}')
})

test('prototype chains are out of reach, and assignments pollute nothing', () => {
  for (const source of [
    '{{ after.constructor }}',
    '{{ after.constructor.constructor }}',
    '{{ after.__proto__ }}',
    "{{ after['__proto__'].toString }}",
    '{{ after.toString }}{{ after.hasOwnProperty }}{{ after.valueOf }}',
    '{{ after.id.constructor.name }}{{ after.id.toJSON }}',
    '{{ status.constructor }}{{ status.length.constructor }}',
    '{% assign c = after.constructor %}{{ c.name }}{{ c.prototype }}',
  ]) {
    assert.equal(renderString(source, scope()), '', source)
  }
  const builtins = Object.getOwnPropertyNames(Object.prototype).sort()
  for (const source of [
    '{% assign __proto__ = after %}',
    '{% capture constructor %}x{% endcapture %}',
    '{% increment __proto__ %}',
    '{% assign toString = 1 %}{% assign hasOwnProperty = 1 %}',
  ]) {
    renderString(source, scope())
  }
  assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), builtins)
  assert.equal(({} as Record<string, unknown>).polluted, undefined)
  assert.equal(typeof {}.toString, 'function')
  assert.equal(renderString('{% assign leak = "x" %}', scope()), '')
  assert.equal(renderString('{{ leak }}', scope()), '', 'nothing carries over from one render to the next')
})

test('runaway templates stop at the render and memory limits with OB008', () => {
  assert.match(
    renderError('{% for a in (1..100000) %}{% for b in (1..100000) %}{% endfor %}{% endfor %}').message,
    /limit/,
  )
  assert.match(renderError('{% for i in (1..n) %}{{ i }}{% endfor %}').message, /limit/)
  assert.match(
    renderError(
      "{% assign s = 'xxxxxxxxxx' %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}",
    ).message,
    /limit/,
  )
  assert.throws(() => renderJson({ v: '{{ (1..100000000) }}' }, scope()), TemplateError)
})

let db: TestDatabase
let receiver: Receiver
let worker: TestWorker

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  await db.pool.query('create table jobs (id int primary key, kind text not null)')
  const hook = (kind: string, body_template: string) => ({
    name: kind,
    entity: 'jobs',
    events: ['INSERT'],
    condition: `kind = '${kind}'`,
    actions: [{ type: 'webhook', url: `${receiver.url}/${kind}`, body_template }],
  })
  worker = await runWorker(
    db.url,
    await observersDir({
      'spin.json': hook(
        'spin',
        '{% for a in (1..100000) %}{% for b in (1..100000) %}{% endfor %}{% endfor %}',
      ),
      'peek.json': hook('peek', "{% include '/etc/passwd' %}"),
      'env.json': hook('env', '[{{ process.env.SANDBOX_CANARY }}]'),
      'plain.json': hook('plain', 'ok {{ id }}'),
    }),
  )
})

after(async () => {
  await worker?.stop()
  await receiver?.close()
  await db?.drop()
})

test('in the worker, a runaway or prying template dead-letters its own job and the worker carries on', async () => {
  await db.pool.query(`insert into jobs values (1, 'spin'), (2, 'peek'), (3, 'env'), (4, 'plain')`)
  await eventually(
    async () => {
      const { rows } = await db.pool.query('select count(*)::int as n from observers.dlq')
      return rows[0].n === 2 && receiver.requests.length === 2
    },
    30_000,
    'two dead letters and two deliveries',
  )
  const { rows } = await db.pool.query(
    'select observer, last_error_code, attempts from observers.dlq order by 1',
  )
  assert.deepEqual(
    rows.map((r) => [r.observer, r.last_error_code, r.attempts]),
    [
      ['peek', 'OB008', 1],
      ['spin', 'OB008', 1],
    ],
  )
  assert.deepEqual(receiver.requests.map((r) => r.body).sort(), ['[]', 'ok 4'])
  await db.pool.query(`insert into jobs values (5, 'plain')`)
  await eventually(() => receiver.requests.some((r) => r.body === 'ok 5'), 10_000, 'a later delivery')
  const health = await fetch(`http://127.0.0.1:${worker.worker.ops!.port}/healthz`)
  assert.equal(health.status, 200)
})
