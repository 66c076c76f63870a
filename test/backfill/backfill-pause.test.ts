import assert from 'node:assert/strict'
import { test } from 'node:test'
import { pauseAfter } from '../../src/backfill/backfill.ts'

test('a backfill pauses at least pause_ms, longer after a slow page, and not at all with pause_ms 0', () => {
  const cases: Array<[pauseMs: number, pageMs: number, expected: number]> = [
    [100, 10, 100],
    [100, 50, 150],
    [100, 400, 1200],
    [0, 400, 0],
    [1000, 100, 1000],
  ]
  for (const [pauseMs, pageMs, expected] of cases) {
    assert.equal(pauseAfter(pauseMs, pageMs), expected, `pause_ms ${pauseMs}, page ${pageMs} ms`)
  }
})
