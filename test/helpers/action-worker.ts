import type { TestDatabase } from './db.ts'
import { observersDir, startWorkerWithDatabase, type TestWorker } from './worker.ts'

/** Worker env for action tests: few jobs in flight, so two workers fit in Postgres's connection limit. */
export const lean = { OBSERVERS_CONCURRENCY: '2' }

/** Fast, fixed retries: an outage a test provokes is ridden out within seconds once it restores it. */
const quickRetry = { max_attempts: 6, initial_delay_ms: 200, max_delay_ms: 1000, backoff_strategy: 'fixed' }

/** An observer `name` running `action` for INSERTs into `entity` of rows whose `kind` is `name`. */
export function kindObserver(entity: string, name: string, action: Record<string, unknown>) {
  return {
    name,
    entity,
    events: ['INSERT'],
    condition: `kind = '${name}'`,
    actions: [action],
    retry: quickRetry,
  }
}

/** A temporary observers directory holding one `<name>.json` per observer. */
export function observerFiles(...observers: Array<{ name: string }>): Promise<string> {
  return observersDir(Object.fromEntries(observers.map((o) => [`${o.name}.json`, o])))
}

/** A lean worker running `observers`, on a database of its own prepared by `setupSql`. */
export async function startActionWorker(
  setupSql: string,
  observers: Array<{ name: string }>,
  env: Record<string, string>,
): Promise<{ db: TestDatabase; worker: TestWorker }> {
  return startWorkerWithDatabase(setupSql, await observerFiles(...observers), { ...lean, ...env })
}

/** Runs `fn` against a worker of its own, on a database of its own prepared by `setupSql`. */
export async function withWorker(
  setupSql: string,
  observers: Array<{ name: string }>,
  env: Record<string, string>,
  fn: (worker: TestWorker, db: TestDatabase) => Promise<void>,
): Promise<void> {
  const { db, worker } = await startActionWorker(setupSql, observers, env)
  try {
    await fn(worker, db)
  } finally {
    try {
      await worker.stop()
    } finally {
      await db.drop()
    }
  }
}

/**
 * A reply function for a fake server: requests are keyed (by token, path, recipient, ...), each
 * key plays its own script (the last reply repeating), and unknown keys get `fallback`.
 */
export function scripted<T, R>(scripts: Record<string, R[]>, keyOf: (request: T) => string, fallback: R) {
  const served: Record<string, number> = {}
  return (request: T): R => {
    const key = keyOf(request)
    const script = scripts[key]
    if (!script) return fallback
    const n = served[key] ?? 0
    served[key] = n + 1
    return script[Math.min(n, script.length - 1)] ?? fallback
  }
}
