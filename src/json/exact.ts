/**
 * Lossless JSON. Postgres emits numbers such as bigint 9007199254740993 or numeric(30,10)
 * 12.5000000000 that a JS number cannot hold; they travel as ExactNumber, which prints and
 * serialises as the original digits and compares exactly (see compareNumbers).
 */
export class ExactNumber {
  readonly source: string
  constructor(source: string) {
    this.source = source
  }
  toJSON(): unknown {
    return JSON.rawJSON(this.source)
  }
  toString(): string {
    return this.source
  }
  valueOf(): number {
    return Number(this.source)
  }
}

declare global {
  interface JSON {
    rawJSON(text: string): unknown
    parse(
      text: string,
      reviver: (this: unknown, key: string, value: unknown, context: { source?: string }) => unknown,
    ): unknown
  }
}

function revive(_key: string, value: unknown, context: { source?: string }): unknown {
  if (typeof value === 'number' && context.source !== undefined && String(value) !== context.source) {
    return new ExactNumber(context.source)
  }
  return value
}

/** JSON.parse that keeps every number's exact digits (numbers a double cannot hold become ExactNumber). */
export function parseExact(text: string): unknown {
  return JSON.parse(text, revive)
}

/** JSON.stringify; ExactNumber values come out as their original digits. */
export function stringifyExact(value: unknown): string {
  return JSON.stringify(value)
}

export type NumberLike = number | ExactNumber

export function isNumberLike(v: unknown): v is NumberLike {
  return typeof v === 'number' || v instanceof ExactNumber
}

/**
 * Exact comparison of two numbers, either of which may be an ExactNumber: -1, 0 or 1.
 * Plain doubles compare natively; otherwise both are compared as decimal strings.
 */
export function compareNumbers(a: NumberLike, b: NumberLike): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0
  return compareDecimals(decimalOf(a), decimalOf(b))
}

interface Decimal {
  negative: boolean
  int: string
  frac: string
}

function decimalOf(n: NumberLike): Decimal {
  // Doubles print in exponent form past 1e21; toFixed-free expansion keeps their exact value.
  const text = typeof n === 'number' ? expandExponent(String(n)) : expandExponent(n.source)
  const negative = text.startsWith('-')
  const body = negative || text.startsWith('+') ? text.slice(1) : text
  const [intPart = '0', fracPart = ''] = body.split('.')
  const int = intPart.replace(/^0+(?=\d)/, '')
  const frac = fracPart.replace(/0+$/, '')
  const isZero = /^0*$/.test(int) && frac === ''
  return { negative: negative && !isZero, int, frac }
}

function expandExponent(text: string): string {
  const m = /^([+-]?)(\d+)(?:\.(\d*))?[eE]([+-]?\d+)$/.exec(text)
  if (!m) return text
  const [, sign = '', intDigits = '', fracDigits = '', expText = '0'] = m
  const exp = Number(expText)
  const digits = intDigits + fracDigits
  const point = intDigits.length + exp
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`
}

function compareDecimals(a: Decimal, b: Decimal): number {
  if (a.negative !== b.negative) return a.negative ? -1 : 1
  const sign = a.negative ? -1 : 1
  if (a.int.length !== b.int.length) return a.int.length < b.int.length ? -sign : sign
  if (a.int !== b.int) return a.int < b.int ? -sign : sign
  const len = Math.max(a.frac.length, b.frac.length)
  const fa = a.frac.padEnd(len, '0')
  const fb = b.frac.padEnd(len, '0')
  if (fa === fb) return 0
  return fa < fb ? -sign : sign
}
