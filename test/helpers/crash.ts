import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import { assertDrains, sigkill, spawnCli, waitUntilReady } from './process.ts'
import type { Receiver } from './receiver.ts'
import { eventually } from './worker.ts'

export interface MidStreamKill {
  /** Env of both workers: one `trackedWebhook` observer posting to `receiver` (see cliWorkerEnv). */
  env: Record<string, string>
  receiver: Receiver
  /** Changes the writer commits, numbered 1 to `total`, `batchSize` per transaction. */
  total: number
  batchSize: number
  /** Commits changes `first` to `first + size - 1`. */
  writeBatch(first: number, size: number): Promise<unknown>
  /** The field of a delivered `after` row that holds the change's number. */
  numberedBy: string
  /** Requests received before the kill, so that it lands while deliveries are in flight. */
  killAfter: number
  /** How long the second worker may take to deliver every change. */
  deliverWithinMs: number
}

/**
 * SIGKILLs a worker while changes are being written and delivered, then starts a second one, and
 * asserts that every change is delivered, redeliveries under the same delivery id, and that the
 * second worker drains and exits 0 on SIGTERM.
 */
export async function killMidStream(t: TestContext, run: MidStreamKill): Promise<void> {
  const { env, receiver, total } = run
  const first = spawnCli(['start'], env)
  // A failed assertion must not leave a worker running.
  t.after(() => first.kill('SIGKILL'))
  await waitUntilReady(first, env.PORT!)
  const writer = (async () => {
    for (let n = 1; n <= total; n += run.batchSize) {
      await run.writeBatch(n, run.batchSize)
      await delay(10)
    }
  })()
  await eventually(() => receiver.requests.length > run.killAfter, 30_000, 'deliveries under way')
  await sigkill(first)
  await writer
  const second = spawnCli(['start'], env)
  t.after(() => second.kill('SIGKILL'))
  // Ready before anything else: when the first worker delivered everything before it died, the
  // deliveries are all in at once, and a SIGTERM before start-up ends would find no one to drain.
  await waitUntilReady(second, env.PORT!)
  try {
    const changeOf = (body: string) => JSON.parse(body).after[run.numberedBy] as number
    await eventually(
      () => new Set(receiver.requests.map((r) => changeOf(r.body))).size >= total,
      run.deliverWithinMs,
      'all deliveries',
    )
    const idsByChange = new Map<number, Set<string>>()
    for (const r of receiver.requests) {
      const change = changeOf(r.body)
      idsByChange.set(change, (idsByChange.get(change) ?? new Set()).add(String(r.headers['x-delivery-id'])))
    }
    assert.equal(idsByChange.size, total)
    for (const [change, ids] of idsByChange)
      assert.equal(ids.size, 1, `change ${change}: duplicates carry one delivery id`)
  } finally {
    await assertDrains(second)
  }
}
