export interface Distribution {
  count: number
  min: number
  p50: number
  p95: number
  p99: number
  max: number
  mean: number
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN
}

export function distribution(values: Iterable<number>): Distribution {
  const sorted = Float64Array.from(values).sort()
  const list = Array.from(sorted)
  let sum = 0
  for (const v of list) sum += v
  return {
    count: list.length,
    min: list[0] ?? Number.NaN,
    p50: percentile(list, 50),
    p95: percentile(list, 95),
    p99: percentile(list, 99),
    max: list.at(-1) ?? Number.NaN,
    mean: list.length ? sum / list.length : Number.NaN,
  }
}

/** Rounds to `digits` significant decimals, for JSON that stays readable. */
export function round(value: number, digits = 2): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}

export function perSecond(count: number, ms: number): number {
  return ms > 0 ? round((count * 1000) / ms, 1) : Number.NaN
}

export function mib(bytes: number): number {
  return round(bytes / 1024 / 1024, 1)
}

/**
 * Runs `fn` repeatedly for about `ms` milliseconds (after a short warm-up) and returns
 * operations per second. Batches calls so the clock is read rarely.
 */
export function opsPerSecond(fn: () => unknown, ms: number): number {
  const warmUntil = performance.now() + Math.min(200, ms / 5)
  while (performance.now() < warmUntil) fn()
  let ops = 0
  let batch = 64
  const started = performance.now()
  let elapsed = 0
  while (elapsed < ms) {
    for (let i = 0; i < batch; i++) fn()
    ops += batch
    elapsed = performance.now() - started
    if (elapsed < ms / 20) batch *= 2
  }
  return Math.round((ops * 1000) / elapsed)
}
