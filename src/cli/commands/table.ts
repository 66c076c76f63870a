import Table from 'cli-table3'

/** Terminal width the CLI's tables fit in. */
export const tableWidth = 120

// Below this a column shows too little to recognise a value.
const minColumnWidth = 6

/** `text` cut to `width` characters, the cut marked with an ellipsis; line by line. */
export function truncate(text: string, width: number): string {
  return text
    .split('\n')
    .map((line) => (line.length <= width ? line : `${line.slice(0, Math.max(0, width - 1))}…`))
    .join('\n')
}

const longestLine = (text: string) => Math.max(...text.split('\n').map((l) => l.length))

/**
 * Column widths (padding included) that fit `width` with the borders: the widest columns give
 * way first, so short ones (ids, counts) stay whole.
 */
export function fitColumns(
  natural: readonly number[],
  keep: readonly number[] = [],
  width = tableWidth,
): number[] {
  const widths = [...natural]
  const budget = width - (widths.length + 1)
  let total = widths.reduce((a, b) => a + b, 0)
  while (total > budget) {
    const shrinkable = widths.map((w, i) => (keep.includes(i) ? 0 : w))
    const widest = shrinkable.indexOf(Math.max(...shrinkable))
    if ((shrinkable[widest] ?? 0) <= minColumnWidth) break
    widths[widest] = (widths[widest] ?? 0) - 1
    total--
  }
  return widths
}

export interface FitOptions {
  /** Columns never narrowed (ids to copy into the next command). */
  keep?: readonly number[]
  /** Wrap long cells onto more lines instead of cutting them. */
  wrap?: boolean
  /** A rule between rows, for rows that wrap. */
  rules?: boolean
}

/**
 * A colourless table of `rows` under `head`, fitted to 120 columns: the widest columns give
 * way, and their long cells are cut with … (or wrapped, with `wrap`).
 */
export function fittedTable(
  head: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string | number>>,
  opts: FitOptions = {},
): string {
  const text = rows.map((r) => r.map(String))
  const natural = head.map((h, i) => Math.max(h.length, ...text.map((r) => longestLine(r[i] ?? ''))) + 2)
  const widths = fitColumns(natural, opts.keep)
  const cut = (cells: readonly string[]) =>
    opts.wrap ? [...cells] : cells.map((c, i) => truncate(c, (widths[i] ?? 3) - 2))
  const table = new Table({
    head: cut(head),
    colWidths: widths,
    wordWrap: opts.wrap === true,
    wrapOnWordBoundary: false,
    style: { head: [], border: [], compact: !opts.rules },
  })
  for (const r of text) table.push(cut(r))
  return table.toString()
}

export function printTable(
  head: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string | number>>,
  opts: FitOptions = {},
): void {
  console.log(fittedTable(head, rows, opts))
}
