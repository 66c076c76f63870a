import { createHash } from 'node:crypto'
import pg from 'pg'

/**
 * A pg client that sends repeated parameterised statements as named (prepared) ones, so
 * Postgres parses and plans them once per connection instead of on every call. At light load
 * the worker's statements (pg-boss's fetch, completion and insert, our retry and ledger
 * updates) cost more to plan than to run (docs/performance.md).
 *
 * Only statements with parameters and without `;` qualify (a named statement holds one
 * command), and only from their second call, so a text built once — a DLQ filter, say — is
 * never kept. A statement with its values inlined is left alone: its one plan would be made
 * once, on whatever the table held then (pg-boss's fetch, planned on an empty queue, ran 8×
 * slower under load that way). Distinct names are capped: a caller that inlined values into
 * its text would otherwise fill every connection's statement cache.
 */
const maxNamed = 200
const maxSeen = 2_000
const named = new Map<string, string>()
const seenOnce = new Set<string>()

function nameFor(text: string): string | undefined {
  const name = named.get(text)
  if (name !== undefined || named.size >= maxNamed) return name
  if (!seenOnce.has(text)) {
    if (seenOnce.size >= maxSeen) seenOnce.clear()
    seenOnce.add(text)
    return undefined
  }
  seenOnce.delete(text)
  const fresh = `observers_${createHash('sha256').update(text).digest('base64url').slice(0, 24)}`
  named.set(text, fresh)
  return fresh
}

type Query = (this: pg.Client, ...args: unknown[]) => unknown

export class PreparingClient extends pg.Client {}

;(PreparingClient.prototype as unknown as { query: Query }).query = function (this: pg.Client, ...args) {
  const [text, values] = args
  if (typeof text === 'string' && Array.isArray(values) && values.length > 0 && !text.includes(';')) {
    const name = nameFor(text)
    if (name !== undefined) args[0] = { name, text }
  }
  return (pg.Client.prototype as unknown as { query: Query }).query.apply(this, args)
}
