import { compareNumbers, isNumberLike } from '../json/exact.ts'

/** JSON type names, as used in evaluation error messages. */
export type TypeName = 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object'

export function typeName(v: unknown): TypeName {
  if (v === null || v === undefined) return 'null'
  if (typeof v === 'boolean') return 'boolean'
  if (typeof v === 'string') return 'string'
  if (isNumberLike(v)) return 'number'
  return Array.isArray(v) ? 'array' : 'object'
}

/**
 * `=` on two non-null JSON values: numbers by exact value, strings by code units, booleans with
 * booleans, arrays element-wise, objects by key set and values. Different types are never equal.
 */
export function equalValues(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (isNumberLike(a) || isNumberLike(b))
    return isNumberLike(a) && isNumberLike(b) && compareNumbers(a, b) === 0
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && equalArrays(a, b)
  return equalObjects(a as Record<string, unknown>, b as Record<string, unknown>)
}

function equalArrays(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (!equalValues(a[i], b[i])) return false
  return true
}

function equalObjects(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const keys = Object.keys(a)
  if (keys.length !== Object.keys(b).length) return false
  for (const key of keys) if (!Object.hasOwn(b, key) || !equalValues(a[key], b[key])) return false
  return true
}

/** Equality that also tells an absent key (undefined) from a JSON null, for CHANGED. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined || a === null || b === null) return a === b
  return equalValues(a, b)
}

/**
 * Ordering of two non-null values: negative, 0 or positive; NaN when they cannot be ordered
 * (only two numbers or two strings can).
 */
export function orderValues(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b
  if (typeof a === 'string' && typeof b === 'string') return compareCodePoints(a, b)
  if (isNumberLike(a) && isNumberLike(b)) return compareNumbers(a, b)
  return Number.NaN
}

/**
 * Code point order, which is also Postgres' order for UTF-8 text under COLLATE "C". Plain `<`
 * compares UTF-16 code units and would put U+FFFF after an emoji.
 */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return codePointRank(x) - codePointRank(y)
  }
  return a.length - b.length
}

/** Moves surrogates (which start code points above U+FFFF) above every other UTF-16 unit. */
function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000
  return unit >= 0xe000 ? unit - 0x800 : unit
}
