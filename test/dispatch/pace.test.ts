import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Listener } from '../../src/dispatch/listener.ts'
import { notifyPace, wakeable } from '../../src/dispatch/pace.ts'
import type { Partitions } from '../../src/dispatch/partitions.ts'

/**
 * The pace's decisions after each pass, against a listener that only records them and a clock the
 * test sets: the sleep-lock protocol itself runs against Postgres in wake.test.ts.
 */
function pace() {
  const calls: string[] = []
  let asleep = false
  const listener = {
    get asleep() {
      return asleep
    },
    async trySleep() {
      calls.push('trySleep')
      asleep = true
      return true
    },
    async stayAwake() {
      if (asleep) calls.push('stayAwake')
      asleep = false
    },
  } as unknown as Listener
  const clock = { ms: 0 }
  const stop = new AbortController()
  // A poll this long stands for none: a wait that ends was ended by a nudge.
  const wake = wakeable(stop.signal, 600_000)
  const p = notifyPace(
    { listener, partitions: {} as Partitions, wake, pollMs: 600_000, now: () => clock.ms },
    stop.signal,
  )
  return { p, calls, wake, clock, stop }
}

/** Whether `promise` settles before the timers of the current turn of the event loop run. */
async function settlesAtOnce(promise: Promise<unknown>): Promise<boolean> {
  let settled = false
  void promise.then(() => {
    settled = true
  })
  await new Promise((resolve) => setImmediate(resolve))
  return settled
}

test('after a burst, a trickle puts the dispatcher to sleep: each change is woken by its NOTIFY, not found by a poll', async () => {
  const { p, calls, wake, clock, stop } = pace()
  await p.after({ claimed: 40, more: false })
  assert.deepEqual(calls, [], 'a burst keeps the dispatcher awake (it was not asleep)')

  // One change in the last 100 ms: 10 a second.
  clock.ms = 500
  assert.ok(await settlesAtOnce(p.after({ claimed: 1, more: false })), 'no poll wait before the last pass')
  assert.deepEqual(calls, ['trySleep'], 'a trickle tries to sleep at once')

  // The last pass, run once the lock is held, claimed nothing: now only a NOTIFY wakes the loop.
  const waiting = p.after({ claimed: 0, more: false })
  assert.equal(await settlesAtOnce(waiting), false, 'asleep, it waits for a NOTIFY')
  wake.nudge()
  assert.ok(await settlesAtOnce(waiting), 'a NOTIFY wakes it')

  await p.after({ claimed: 8, more: false })
  assert.deepEqual(
    calls,
    ['trySleep', 'stayAwake'],
    'a pass of 8 changes wakes it up: commits stop notifying',
  )
  stop.abort()
})

test('passes of a few changes each at 1 000 a second wake the dispatcher up, and keep it awake', async () => {
  const { p, calls, wake, clock, stop } = pace()
  await p.after({ claimed: 1, more: false })
  assert.deepEqual(calls, ['trySleep'], 'asleep at a trickle')

  // Woken by NOTIFYs every 2 ms, each pass claims the 2 changes committed meanwhile.
  while (!calls.includes('stayAwake') && clock.ms < 100) {
    clock.ms += 2
    wake.nudge()
    await p.after({ claimed: 2, more: false })
  }
  assert.deepEqual(calls, ['trySleep', 'stayAwake'], 'awake once 800 a second or more arrive')

  // Awake, it polls: each poll finds the few changes of the last few milliseconds.
  for (let i = 0; i < 20; i++) {
    clock.ms += 7
    await p.after({ claimed: 7, more: false })
  }
  assert.deepEqual(calls, ['trySleep', 'stayAwake'], 'it never tries to sleep while they keep coming')

  clock.ms += 1000
  await p.after({ claimed: 0, more: false })
  assert.deepEqual(calls, ['trySleep', 'stayAwake', 'trySleep'], 'a poll that finds nothing puts it to sleep')
  stop.abort()
})

test('a pass that stopped at its limits is followed by the next at once', async () => {
  const { p, calls, stop } = pace()
  assert.ok(await settlesAtOnce(p.after({ claimed: 500, more: true })))
  assert.deepEqual(calls, [])
  stop.abort()
})
