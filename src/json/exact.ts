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

const isDigit = (c: number) => c >= 48 && c <= 57

/**
 * Whether some number in `text` might not print back as written: 16 or more digits (and dots) in
 * a row, an exponent, a fraction ending in 0, six zeros after a point (printed with an exponent),
 * or -0. Strings are not skipped, so it errs towards the reviver; a number with 15 significant
 * digits or fewer and none of these reads back as its own text. One pass, no regex: this runs on
 * every row image read.
 */
function mayBeInexact(text: string): boolean {
  let run = 0
  let fraction = false
  let zeros = -1
  let prev = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (isDigit(c) || c === 46) {
      if (++run >= 16) return true
      if (c === 46) {
        fraction = true
        zeros = 0
      } else if (zeros >= 0) {
        zeros = c === 48 ? zeros + 1 : -1
        if (zeros >= 6) return true
      }
      if (c === 48 && prev === 45 && !isDigit(text.charCodeAt(i + 1)) && text.charCodeAt(i + 1) !== 46)
        return true
    } else {
      if ((fraction && prev === 48) || ((c === 101 || c === 69) && isDigit(prev))) return true
      run = 0
      fraction = false
      zeros = -1
    }
    prev = c
  }
  return fraction && prev === 48
}

/** JSON.parse that keeps every number's exact digits (numbers a double cannot hold become ExactNumber). */
export function parseExact(text: string): unknown {
  // A reviver is called for every value, and parsing with one took most of a replay's CPU.
  return mayBeInexact(text) ? JSON.parse(text, revive) : JSON.parse(text)
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
