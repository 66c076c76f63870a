import type { Queryable } from '../db/pool.ts'
import { describeError } from '../errors/errors.ts'
import type { ChangeSource, SourceHealth } from './types.ts'

const bucketMs = 60_000
const buckets = 5

/** Dispatch outcomes of one source in this process, for its error rate. */
export interface SourceStats {
  passed(): void
  failed(error: string): void
  malformed(count: number): void
  read(): Pick<SourceHealth, 'errorRate' | 'errors' | 'malformed' | 'lastPassAt' | 'lastError'>
}

/** Counts passes per minute and keeps the last five minutes, so the error rate follows recent health. */
export function sourceStats(now: () => number = Date.now): SourceStats {
  const recent = new Map<number, { passes: number; failures: number }>()
  let errors = 0
  let malformed = 0
  let lastPassAt: string | null = null
  let lastError: string | null = null
  const count = (failed: boolean) => {
    const minute = Math.floor(now() / bucketMs)
    for (const m of recent.keys()) if (m <= minute - buckets) recent.delete(m)
    const b = recent.get(minute) ?? { passes: 0, failures: 0 }
    b.passes++
    if (failed) b.failures++
    recent.set(minute, b)
  }
  return {
    passed() {
      count(false)
      lastPassAt = new Date(now()).toISOString()
    },
    failed(error) {
      count(true)
      errors++
      lastError = error
    },
    malformed(n) {
      malformed += n
    },
    read() {
      const since = Math.floor(now() / bucketMs) - buckets
      let passes = 0
      let failures = 0
      for (const [m, b] of recent) {
        if (m <= since) continue
        passes += b.passes
        failures += b.failures
      }
      return { errorRate: passes === 0 ? null : failures / passes, errors, malformed, lastPassAt, lastError }
    },
  }
}

/**
 * Backlog and lag measured at the source, with this process's error counts when it has any. A
 * source that cannot be measured reports a null backlog and the reason as lastError.
 */
export async function sourceHealth(
  source: ChangeSource,
  db: Queryable,
  opts: { backlogWarn: number; stats?: SourceStats | undefined },
): Promise<SourceHealth> {
  const counts = opts.stats?.read() ?? {
    errorRate: null,
    errors: 0,
    malformed: 0,
    lastPassAt: null,
    lastError: null,
  }
  const base = { name: source.name, kind: source.kind, ...counts }
  try {
    const b = await source.backlog(db)
    return {
      ...base,
      backlog: b.backlog,
      lagSeconds: b.oldestAgeSeconds,
      backlogWarning: b.backlog > opts.backlogWarn,
    }
  } catch (err) {
    return {
      ...base,
      backlog: null,
      lagSeconds: null,
      backlogWarning: false,
      lastError: describeError(err),
    }
  }
}
