/**
 * The candidate closest to `word` (case-insensitive, adjacent swaps count as one edit, a
 * truncation as one), or undefined when nothing is close enough to be a plausible typo.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const maxDistance = Math.max(1, Math.floor(word.length / 3))
  let best: string | undefined
  let bestDistance = maxDistance + 1
  const lower = word.toLowerCase()
  for (const candidate of candidates) {
    const other = candidate.toLowerCase()
    // A truncated name (`tenant` for tenant_id) is as plausible as a one-letter typo.
    const d = lower.length >= 3 && other.startsWith(lower) ? 1 : editDistance(lower, other)
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

/** "; did you mean X?" or "", for appending to an error message. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const match = closest(word, candidates)
  return match === undefined ? '' : `; did you mean ${match}?`
}

/** Optimal string alignment distance: Levenshtein plus transposition of two adjacent characters. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = []
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i]
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j)
        continue
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      const above = rows[i - 1]!
      let d = Math.min(above[j]! + 1, row[j - 1]! + 1, above[j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, rows[i - 2]![j - 2]! + 1)
      row.push(d)
    }
    rows.push(row)
  }
  return rows[a.length]![b.length]!
}
