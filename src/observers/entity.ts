import { coerceError } from '../errors/errors.ts'

/**
 * Entity names: `schema.table`, as the capture trigger writes them into change_log.entity.
 * A part holding a dot or a double quote is quoted as Postgres' quote_ident quotes it, so that
 * schema "a.b" table c (`"a.b".c`) and schema a table "b.c" (`a."b.c"`) stay apart; every other
 * part is written bare, whatever its case (migrations/0007_bounded_capture.sql).
 */

/** Schemas of pg-observers itself: its change log, ledgers and queue can never be watched. */
export const ownSchemas: ReadonlySet<string> = new Set(['observers', 'pgboss'])

function quotePart(part: string): string {
  return part.includes('.') || part.includes('"') ? `"${part.replaceAll('"', '""')}"` : part
}

/** The entity name of a table, as the capture trigger writes it. */
export function formatEntity(schema: string, table: string): string {
  return `${quotePart(schema)}.${quotePart(table)}`
}

/** A quoted identifier at `start` of `text`: its name and the index after its closing quote. */
function readQuoted(text: string, start: number): { name: string; end: number } | undefined {
  let name = ''
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] !== '"') name += text[i]
    else if (text[i + 1] === '"') name += text[++i]
    else return { name, end: i + 1 }
  }
  return undefined
}

/**
 * `orders` → public, orders; `sales."q.1"` → sales, q.1; `"a.b".c` → a.b, c. Bare, the schema ends
 * at the first dot and the table is the rest (`public.dotted.name` is table "dotted.name"), as
 * names were always read. Throws for an unbalanced or misplaced quote.
 */
export function parseEntity(text: string): [string, string] {
  const invalid = () => new Error(`"${text}" is not a valid schema.table name`)
  let schema: string
  let rest: number
  if (text.startsWith('"')) {
    const quoted = readQuoted(text, 0)
    if (!quoted || (quoted.end < text.length && text[quoted.end] !== '.')) throw invalid()
    schema = quoted.name
    rest = quoted.end
  } else {
    const dot = text.indexOf('.')
    schema = dot < 0 ? text : text.slice(0, dot)
    rest = dot < 0 ? text.length : dot
  }
  if (rest >= text.length) {
    if (schema === '') throw invalid()
    return ['public', schema]
  }
  let table = text.slice(rest + 1)
  if (table.startsWith('"')) {
    const quoted = readQuoted(text, rest + 1)
    if (!quoted || quoted.end !== text.length) throw invalid()
    table = quoted.name
  }
  if (schema === '' || table === '') throw invalid()
  return [schema, table]
}

/** What is wrong with an observer's `entity`, or undefined when it names a watchable table. */
export function entityProblem(text: string): string | undefined {
  let schema: string
  try {
    ;[schema] = parseEntity(text)
  } catch (err) {
    return coerceError(err).message
  }
  if (ownSchemas.has(schema)) {
    return `"${text}" is a table of pg-observers itself (schema ${schema}) and cannot be watched`
  }
  return undefined
}

/**
 * `orders` → `public.orders`, written as the capture trigger writes it. A name that does not
 * parse is returned as given: it matches no change (observer files report it, see entityProblem).
 */
export function normaliseEntity(text: string): string {
  try {
    return formatEntity(...parseEntity(text))
  } catch {
    return text
  }
}
