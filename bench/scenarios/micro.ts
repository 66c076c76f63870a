import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { compileCondition } from '../../src/conditions/index.ts'
import { buildMatcher } from '../../src/dispatch/match.ts'
import type { Delivery } from '../../src/event/delivery.ts'
import type { ChangeEvent } from '../../src/event/event.ts'
import { parseExact } from '../../src/json/exact.ts'
import { createLogger } from '../../src/log/log.ts'
import { loadObservers } from '../../src/observers/load.ts'
import type { Observer } from '../../src/observers/types.ts'
import { jobOf } from '../../src/queue/policy.ts'
import { renderJson, renderString, templateScope } from '../../src/templates/render.ts'
import type { BenchContext, ScenarioResult } from '../harness.ts'
import { fmt } from '../harness.ts'
import { opsPerSecond, round } from '../stats.ts'

const matchGoalMs = 1
const condition = "status = 'shipped' AND total > 100 AND CHANGED(status)"

const event: ChangeEvent = {
  id: '6f1c2a3e-8b9d-4c5e-9f00-112233445566',
  seq: 42,
  event: 'UPDATE',
  entity: 'public.orders_7',
  entity_id: '42',
  before: { id: 42, status: 'paid', total: 250, customer_email: 'ada@example.com', tenant_id: 'acme' },
  after: { id: 42, status: 'shipped', total: 250, customer_email: 'ada@example.com', tenant_id: 'acme' },
  changed: ['status'],
  tenant_id: 'acme',
  actor_id: 'user-7',
  txid: '812',
  created_at: '2026-01-01T00:00:00.000Z',
}

/**
 * `count` observer files spread over 50 tables, each with a 3-clause condition and one webhook,
 * loaded the way the worker loads them.
 */
async function loadManyObservers(count: number): Promise<Observer[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'observers-micro-'))
  try {
    for (let i = 0; i < count; i++) {
      const observer = {
        name: `observer-${i}`,
        entity: `public.orders_${i % 50}`,
        events: ['INSERT', 'UPDATE'],
        condition: `status = 'shipped' AND total > ${i % 300} AND CHANGED(status)`,
        actions: [{ type: 'webhook', url: 'https://example.com/hook' }],
      }
      await writeFile(path.join(dir, `observer-${i}.json`), JSON.stringify(observer))
    }
    const { observers, problems } = await loadObservers(dir)
    if (problems.length > 0) throw new Error(`micro: observer files rejected: ${problems[0]?.message}`)
    return observers
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const stringTemplate = 'Order {{ entity_id }} shipped to {{ after.customer_email }} (total {{ after.total }})'
const jsonTemplate = {
  order: '{{ after.id }}',
  total: '{{ after.total }}',
  customer: { email: '{{ after.customer_email }}' },
  note: 'Order {{ entity_id }} is {{ status }}',
}

/** One UPDATE matched against 1000 observers; the matcher is built once, as the worker does. */
async function measureMatch(ms: number) {
  const many = await loadManyObservers(1000)
  const built = performance.now()
  const match = buildMatcher(many, jobOf)
  const buildMs = performance.now() - built
  const matched = match(event).length
  if (matched === 0) throw new Error('micro: the benchmark event should match some observers')
  const matchesPerSecond = opsPerSecond(() => match(event), ms)
  return { buildMs, matched, matchesPerSecond, matchMs: 1000 / matchesPerSecond }
}

/** A fetched job's data as pg hands it to the jsonb parser: the delivery with its event. */
const jobText = JSON.stringify({
  delivery_id: '0b8e4f2a-4e2f-4c1e-9e4d-3f2a1b0c9d8e',
  observer: 'bench-webhook',
  action_index: 0,
  action: JSON.stringify({ type: 'webhook', url: 'http://127.0.0.1:3000/hook' }),
  retry: { max_attempts: 5, backoff: 'exponential', base_ms: 1000 },
  on_failure: 'dlq',
  event,
})
  .replaceAll('",', '", ')
  .replaceAll('":', '": ')

/** The line every delivery writes (src/execute/execute.ts), formatted and discarded: no system call. */
function deliveryLogLine(): () => void {
  const log = createLogger('info', { write: () => {} })
  const base = { observer: 'bench-webhook', action: 0, type: 'webhook', delivery_id: 'd-1', attempt: 1 }
  return () => log.info({ ...base, duration_ms: 3, outcome: 'success', status: 200 }, 'action succeeded')
}

/** In-process hot paths: condition evaluation, matching, template rendering, a job's JSON, a log line. */
export async function runMicro(ctx: BenchContext): Promise<ScenarioResult> {
  const ms = ctx.options.quick ? 300 : 2000
  ctx.note(`micro: ${ms} ms per measurement`)
  const compiled = compileCondition(condition)
  if (!compiled.test(event)) throw new Error('micro: the benchmark condition should hold for its event')
  const conditionOps = opsPerSecond(() => compiled.test(event), ms)
  const m = await measureMatch(ms)
  const delivery = { delivery_id: 'd', observer: 'o', action_index: 0, event } as unknown as Delivery
  const scope = templateScope(delivery, 1)
  const stringOps = opsPerSecond(() => renderString(stringTemplate, scope), ms)
  const jsonOps = opsPerSecond(() => renderJson(jsonTemplate, scope), ms)
  const parseOps = opsPerSecond(() => parseExact(jobText), ms)
  const logOps = opsPerSecond(deliveryLogLine(), ms)
  return {
    figures: {
      condition,
      conditionEvaluationsPerSecond: conditionOps,
      observers: 1000,
      matcherBuildMs: round(m.buildMs, 2),
      observersMatchedPerEvent: m.matched,
      matchesPerSecond: m.matchesPerSecond,
      msPerMatch: round(m.matchMs, 4),
      renderStringPerSecond: stringOps,
      renderJsonPerSecond: jsonOps,
      parseJobDataUs: round(1e6 / parseOps, 2),
      deliveryLogLineUs: round(1e6 / logOps, 2),
    },
    rows: [
      { metric: 'condition evaluations/s (3 clauses)', value: fmt(conditionOps, '/s', 0) },
      {
        metric: `match vs 1000 observers (${m.matched} fire)`,
        value: fmt(m.matchMs * 1000, 'µs', 1),
        goal: `< ${matchGoalMs} ms`,
        met: m.matchMs < matchGoalMs,
      },
      { metric: 'renderString/s', value: fmt(stringOps, '/s', 0) },
      { metric: 'renderJson/s (4 leaves)', value: fmt(jsonOps, '/s', 0) },
      { metric: "parseExact of a job's data", value: fmt(1e6 / parseOps, 'µs', 2) },
      { metric: 'delivery log line (formatted, not written)', value: fmt(1e6 / logOps, 'µs', 2) },
    ],
  }
}
