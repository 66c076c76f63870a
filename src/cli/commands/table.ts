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
export function fitColumns(natural: readonly number[], width = tableWidth): number[] {
  const widths = [...natural]
  const budget = width - (widths.length + 1)
  let total = widths.reduce((a, b) => a + b, 0)
  while (total > budget) {
    const widest = widths.indexOf(Math.max(...widths))
    if ((widths[widest] ?? 0) <= minColumnWidth) break
    widths[widest] = (widths[widest] ?? 0) - 1
    total--
  }
  return widths
}

/** A borderless-colour table of `rows` under `head`, fitted to 120 columns, long cells cut with …. */
export function fittedTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const natural = head.map((h, i) => Math.max(h.length, ...rows.map((r) => longestLine(r[i] ?? ''))) + 2)
  const widths = fitColumns(natural)
  const cut = (cells: readonly string[]) => cells.map((c, i) => truncate(c, (widths[i] ?? 3) - 2))
  const table = new Table({
    head: cut(head),
    colWidths: widths,
    style: { head: [], border: [], compact: true },
  })
  for (const r of rows) table.push(cut(r))
  return table.toString()
}

export function printTable(head: readonly string[], rows: readonly (readonly string[])[]): void {
  console.log(fittedTable(head, rows))
}
