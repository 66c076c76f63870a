import type { ChangeEvent } from '../event/event.ts'
import { ExactNumber } from '../json/exact.ts'
import type { Expr, Field, FieldScope } from './ast.ts'

/** Field prefixes (case-insensitive) that choose the row image instead of naming a column. */
export const scopePrefixes: ReadonlyMap<string, FieldScope> = new Map([
  ['after', 'after'],
  ['new', 'after'],
  ['before', 'before'],
  ['old', 'before'],
])

/** Fields of the change event that `event.<name>` reads (SPEC §5). */
export const eventFields = [
  'id',
  'seq',
  'event',
  'entity',
  'entity_id',
  'tenant_id',
  'actor_id',
  'txid',
  'created_at',
  'changed',
] as const

/**
 * Bare names that read the event field when the row has no column of that name. Columns win so
 * that adding an event field never changes what an existing condition means.
 */
export const eventFallbackNames: ReadonlySet<string> = new Set([
  'event',
  'entity',
  'entity_id',
  'tenant_id',
  'actor_id',
])

/** A path step, precomputed so evaluation does no string work: arrays are indexed only by digit keys. */
interface Step {
  readonly key: string
  readonly index: number
}

/** Reads a field: the value, or undefined when the key (or any parent) is absent. */
export type Lookup = (event: ChangeEvent) => unknown

/** `eventFallback` lets a bare name such as `tenant_id` read the event when the row lacks that column. */
export function compileLookup(scope: FieldScope, path: readonly string[], eventFallback = false): Lookup {
  const steps = path.map(toStep)
  switch (scope) {
    case 'after':
      return (e) => walk(e.after, steps)
    case 'before':
      return (e) => walk(e.before, steps)
    case 'event': {
      const name = path[0] as keyof ChangeEvent
      return (e) => e[name]
    }
    case 'row':
      return eventFallback ? rowLookupWithFallback(steps) : (e) => walk(e.after ?? e.before, steps)
  }
}

function rowLookupWithFallback(steps: readonly Step[]): Lookup {
  const name = steps[0]?.key ?? ''
  if (steps.length !== 1 || !eventFallbackNames.has(name)) return (e) => walk(e.after ?? e.before, steps)
  const field = name as keyof ChangeEvent
  return (e) => {
    const value = walk(e.after ?? e.before, steps)
    return value === undefined ? e[field] : value
  }
}

/** The value at `path` from the image the field's scope names (after ?? before for `row`). */
export function lookupIn(image: unknown, path: readonly string[]): unknown {
  return walk(image, path.map(toStep))
}

function walk(root: unknown, steps: readonly Step[]): unknown {
  let value = root
  for (let i = 0; i < steps.length; i++) {
    if (typeof value !== 'object' || value === null || value instanceof ExactNumber) return undefined
    const step = steps[i]!
    if (Array.isArray(value)) {
      value = step.index < 0 ? undefined : value[step.index]
    } else {
      // hasOwn keeps keys like `constructor` from reading Object.prototype.
      value = Object.hasOwn(value, step.key) ? (value as Record<string, unknown>)[step.key] : undefined
    }
    if (value === undefined) return undefined
  }
  return value
}

function toStep(key: string): Step {
  return { key, index: /^(?:0|[1-9]\d{0,8})$/.test(key) ? Number(key) : -1 }
}

/**
 * The row columns a condition reads (first path element, sorted, unique), so a caller can warn
 * about names no watched column has. Bare names that fall back to an event field are left out,
 * because they resolve without a column.
 */
export function collectColumns(expr: Expr): string[] {
  const columns = new Set<string>()
  for (const field of fieldsOf(expr)) {
    const column = field.path[0]
    if (field.scope === 'event' || column === undefined) continue
    if (field.scope === 'row' && field.path.length === 1 && eventFallbackNames.has(column)) continue
    columns.add(column)
  }
  return [...columns].sort()
}

function fieldsOf(expr: Expr): Field[] {
  switch (expr.kind) {
    case 'and':
    case 'or':
    case 'compare':
      return [...fieldsOf(expr.left), ...fieldsOf(expr.right)]
    case 'not':
    case 'in':
    case 'is_null':
      return fieldsOf(expr.operand)
    case 'call':
      return expr.field === null ? [] : [expr.field]
    case 'field':
      return [expr]
    case 'literal':
      return []
  }
}
