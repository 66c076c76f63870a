import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ActionConfig } from '../../src/observers/types.ts'
import { actionTimeoutMs, destinationKey, jobExpirySeconds, jobOf } from '../../src/queue/policy.ts'
import { delivery } from '../helpers/action-context.ts'

const webhook = (fields: Partial<ActionConfig> = {}): ActionConfig =>
  ({ type: 'webhook', url: 'https://hooks.example.com/orders', ...fields }) as ActionConfig

test("an attempt's time limit is the action's timeout_ms, else its type's default", () => {
  const cases: Array<[ActionConfig, number]> = [
    [webhook(), 10_000],
    [webhook({ timeout_ms: 2500 }), 2500],
    [{ type: 'email', to: 'a@example.com' } as ActionConfig, 30_000],
    [{ type: 'no-such-type' } as ActionConfig, 10_000],
  ]
  for (const [action, ms] of cases) assert.equal(actionTimeoutMs(action), ms, JSON.stringify(action))
})

test('a job expires after its time limit plus a margin, so a live attempt settles first', () => {
  assert.equal(jobExpirySeconds(webhook()), 15)
  assert.equal(jobExpirySeconds(webhook({ timeout_ms: 2500 })), 8)
})

test('the queue is ordered for a row key, limited for max_concurrency, plain otherwise', () => {
  const job = (action: ActionConfig, orderingKey?: string) =>
    jobOf({ jobId: undefined, delivery: delivery(action), orderingKey })
  const plain = job(webhook())
  assert.deepEqual([plain.queue, plain.key, plain.group], ['observers.webhook', undefined, undefined])
  const ordered = job(webhook({ max_concurrency: 2 }), 'o/0/1')
  assert.deepEqual([ordered.queue, ordered.key], ['observers.webhook.ordered', 'o/0/1'])
  const limited = job(webhook({ max_concurrency: 2 }))
  assert.equal(limited.queue, 'observers.webhook.limited')
  assert.deepEqual(limited.group, { id: destinationKey(limited.delivery.action), limit: 2 })
  assert.equal(limited.expireInSeconds, 15)
})

test('the destination key names the type and the destination, never a secret', () => {
  assert.equal(destinationKey(webhook()), 'webhook:https://hooks.example.com/orders')
  assert.equal(destinationKey(webhook({ url: undefined, url_env: 'SHIP_URL' })), 'webhook:env:SHIP_URL')
})
