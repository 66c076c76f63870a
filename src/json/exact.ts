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
 * Whether the number token at `i` (if one starts there) may not print back as written: an
 * exponent, "-0", a fraction ending in 0, one below 1e-6, or 16 digits and more. Any other
 * token has at most 15 significant digits in plain notation, which String(number) reproduces.
 */
function inexactAt(text: string, i: number): boolean {
  let j = text.charCodeAt(i) === 45 ? i + 1 : i
  const intStart = j
  while (isDigit(text.charCodeAt(j))) j++
  const intDigits = j - intStart
  if (intDigits === 0) return false
  let fracDigits = 0
  if (text.charCodeAt(j) === 46) {
    const fracStart = ++j
    while (isDigit(text.charCodeAt(j))) j++
    fracDigits = j - fracStart
    if (text.charCodeAt(j - 1) === 48) return true
    if (intDigits === 1 && text.startsWith('0.000000', intStart)) return true
  }
  const next = text.charCodeAt(j)
  if (next === 101 || next === 69) return true
  if (intDigits + fracDigits >= 16) return true
  return intStart > i && intDigits === 1 && fracDigits === 0 && text.charCodeAt(intStart) === 48
}

/**
 * True when some value position (the start, or after `:`, `,` or `[` outside strings) holds a
 * number that may need an ExactNumber. Strings are skipped whole: a timestamp's "…:00.000Z" is
 * no number.
 */
function mayBeInexact(text: string): boolean {
  let atValue = true
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      atValue = false
      for (i++; i < text.length && text.charCodeAt(i) !== 34; i++) if (text.charCodeAt(i) === 92) i++
    } else if (c === 58 || c === 44 || c === 91) atValue = true
    else if (atValue && c !== 32 && c !== 10 && c !== 13 && c !== 9) {
      atValue = false
      if ((c === 45 || isDigit(c)) && inexactAt(text, i)) return true
    }
  }
  return false
}

/** JSON.parse that keeps every number's exact digits (numbers a double cannot hold become ExactNumber). */
export function parseExact(text: string): unknown {
  // The reviver costs a call and a context object per value; most documents need none of it.
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
