import assert from 'node:assert/strict'
import { test } from 'node:test'
import { costShare, maxPauseShare, pauseShare, Throttle } from '../../src/backfill/throttle.ts'

/** A cycle of a page of `pageMs` during which the server ended `inPage` write transactions (its own included), then a pause. */
function cycle(t: Throttle, at: number, pageMs: number, inPage: number, pauseMs: number, inPause: number) {
  const start = { at, xid: 1000 }
  const end = { at: at + pageMs, xid: 1000 + inPage }
  const next = { at: at + pageMs + pauseMs, xid: 1000 + inPage + inPause }
  t.observe(start, end, next)
  return next.at
}

test('before anything is measured a backfill pauses at least pause_ms, 3 × a slow page, and not at all with pause_ms 0', () => {
  const cases: Array<[pauseMs: number, pageMs: number, expected: number]> = [
    [100, 10, 100],
    [100, 50, 150],
    [100, 400, 1200],
    [0, 400, 0],
    [1000, 100, 1000],
  ]
  for (const [pauseMs, pageMs, expected] of cases) {
    assert.equal(new Throttle().pause(pauseMs, pageMs), expected, `pause_ms ${pauseMs}, page ${pageMs} ms`)
  }
})

test('pages that slow the application lengthen the pause until a page costs it at most costShare of its writes', () => {
  const t = new Throttle()
  let at = 0
  // The application commits 1000 writes/s alone and 500/s while a page runs: d = 0.5.
  for (let i = 0; i < 60; i++) at = cycle(t, at, 100, 51, 300, 300)
  assert.ok(Math.abs(t.slowdown - 0.5) < 0.01, `slowdown ${t.slowdown}`)
  const pause = t.pause(100, 100)
  assert.equal(pause, Math.round(100 * (0.5 / costShare - 1)))
  assert.ok((0.5 * 100) / (100 + pause) <= costShare + 1e-9, 'the cost stays within the share')
})

test('the pause never exceeds maxPauseShare × the page, and falls back to the floor once pages stop hurting', () => {
  const t = new Throttle()
  let at = 0
  // Writes stop altogether while a page runs.
  for (let i = 0; i < 60; i++) at = cycle(t, at, 100, 1, 300, 300)
  assert.equal(t.pause(100, 100), 100 * maxPauseShare)
  // The application no longer notices the pages (same rate in both), or no longer writes.
  for (let i = 0; i < 60; i++) at = cycle(t, at, 100, 101, 300, 300)
  assert.equal(t.pause(100, 100), 100 * pauseShare)
  const idle = new Throttle()
  for (let i = 0; i < 60; i++) at = cycle(idle, at, 100, 1, 300, 2)
  assert.equal(idle.slowdown, 0)
  assert.equal(idle.pause(100, 10), 100)
})
