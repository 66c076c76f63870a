import assert from 'node:assert/strict'
import { test } from 'node:test'
import { retryDelayMs } from '../../src/execute/backoff.ts'
import type { RetryPolicy } from '../../src/observers/types.ts'

const policy = (backoff_strategy: RetryPolicy['backoff_strategy']): RetryPolicy => ({
  max_attempts: 10,
  initial_delay_ms: 100,
  max_delay_ms: 1000,
  backoff_strategy,
})

test('exponential doubles from the initial delay and stops at the cap', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => retryDelayMs(policy('exponential'), n)),
    [100, 200, 400, 800, 1000],
  )
})

test('linear grows by the initial delay each attempt', () => {
  assert.deepEqual(
    [1, 2, 3, 11].map((n) => retryDelayMs(policy('linear'), n)),
    [100, 200, 300, 1000],
  )
})

test('fixed always waits the initial delay', () => {
  assert.deepEqual(
    [1, 5, 9].map((n) => retryDelayMs(policy('fixed'), n)),
    [100, 100, 100],
  )
})

test('Retry-After wins when longer, within the cap', () => {
  assert.equal(retryDelayMs(policy('fixed'), 1, 700), 700)
  assert.equal(retryDelayMs(policy('fixed'), 1, 50), 100)
  assert.equal(retryDelayMs(policy('fixed'), 1, 60_000), 1000)
})
