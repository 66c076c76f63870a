import { ConditionSyntaxError } from '../errors/errors.ts'

/**
 * `name` is a bare word (keyword, function or field); `quoted_name` a `backtick` field name,
 * never a keyword; `string` and `quoted_name` carry their decoded text in `value`.
 */
export type TokenKind = 'name' | 'quoted_name' | 'string' | 'number' | 'op' | '(' | ')' | ',' | '.' | 'eof'

export interface Token {
  readonly kind: TokenKind
  /** The token exactly as written. */
  readonly text: string
  readonly value: string
  readonly start: number
  readonly end: number
}

const twoCharOps = new Set(['==', '!=', '<>', '<=', '>=', '&&', '||'])
const oneCharOps = new Set(['=', '<', '>', '!'])
const punctuation = new Set(['(', ')', ',', '.'])
const escapes: Record<string, string> = {
  '\\': '\\',
  "'": "'",
  '"': '"',
  n: '\n',
  t: '\t',
  r: '\r',
  '/': '/',
}
const numberPattern = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y

export function tokenize(source: string): Token[] {
  const tokens: Token[] = []
  let i = skipSpace(source, 0)
  while (i < source.length) {
    const afterDot = tokens.at(-1)?.kind === '.'
    const token = readToken(source, i, afterDot)
    tokens.push(token)
    i = skipSpace(source, token.end)
  }
  tokens.push({ kind: 'eof', text: '', value: '', start: source.length, end: source.length })
  return tokens
}

function readToken(source: string, i: number, afterDot: boolean): Token {
  const c = source[i] ?? ''
  if (c === "'" || c === '"') return readString(source, i)
  if (c === '`') return readQuotedName(source, i)
  // After a dot any word is a path segment, so `items.0` and `after.order` read keys.
  if (afterDot ? isNameChar(c) : isNameStart(c)) return readName(source, i)
  if (isDigit(c) || (c === '-' && isDigit(source[i + 1] ?? ''))) return readNumber(source, i)
  return readSymbol(source, i)
}

function readName(source: string, start: number): Token {
  let end = start
  while (end < source.length && isNameChar(source[end] ?? '')) end++
  const text = source.slice(start, end)
  return { kind: 'name', text, value: text, start, end }
}

function readNumber(source: string, start: number): Token {
  numberPattern.lastIndex = start
  numberPattern.exec(source)
  let end = numberPattern.lastIndex
  const next = source[end] ?? ''
  if (isNameChar(next) || next === '.') {
    while (end < source.length && (isNameChar(source[end] ?? '') || source[end] === '.')) end++
    const bad = source.slice(start, end)
    throw new ConditionSyntaxError(
      source,
      start,
      `invalid number '${bad}': expected digits like 42, -7, 12.50 or 1e6`,
    )
  }
  const text = source.slice(start, end)
  return { kind: 'number', text, value: text, start, end }
}

function readString(source: string, start: number): Token {
  const { value, end } = readQuoted(source, start, true)
  return { kind: 'string', text: source.slice(start, end), value, start, end }
}

function readQuotedName(source: string, start: number): Token {
  const { value, end } = readQuoted(source, start, false)
  if (value === '')
    throw new ConditionSyntaxError(source, start, 'empty field name ``: expected a name between backticks')
  return { kind: 'quoted_name', text: source.slice(start, end), value, start, end }
}

/** Reads up to the matching quote; a doubled quote stands for itself, and strings also take backslash escapes. */
function readQuoted(source: string, start: number, backslashes: boolean): { value: string; end: number } {
  const quote = source[start]
  let value = ''
  let i = start + 1
  while (i < source.length) {
    const c = source[i]
    if (c === quote) {
      if (source[i + 1] !== quote) return { value, end: i + 1 }
      value += quote
      i += 2
    } else if (c === '\\' && backslashes) {
      const { text, length } = readEscape(source, i)
      value += text
      i += length
    } else {
      value += c
      i++
    }
  }
  const what = backslashes ? 'string' : 'field name'
  throw new ConditionSyntaxError(source, start, `unterminated ${what}: expected a closing ${quote}`)
}

function readEscape(source: string, at: number): { text: string; length: number } {
  const c = source[at + 1] ?? ''
  const simple = escapes[c]
  if (simple !== undefined) return { text: simple, length: 2 }
  const hex = source.slice(at + 2, at + 6)
  if (c === 'u' && /^[0-9a-fA-F]{4}$/.test(hex))
    return { text: String.fromCharCode(Number.parseInt(hex, 16)), length: 6 }
  throw new ConditionSyntaxError(
    source,
    at,
    `unknown escape '\\${c}' in string: expected one of \\\\ \\' \\" \\n \\t \\r \\/ \\uXXXX`,
  )
}

function readSymbol(source: string, start: number): Token {
  const two = source.slice(start, start + 2)
  if (twoCharOps.has(two)) return { kind: 'op', text: two, value: two, start, end: start + 2 }
  const c = source[start] ?? ''
  if (oneCharOps.has(c)) return { kind: 'op', text: c, value: c, start, end: start + 1 }
  if (punctuation.has(c)) return { kind: c as TokenKind, text: c, value: c, start, end: start + 1 }
  if (c === '&' || c === '|') {
    throw new ConditionSyntaxError(source, start, `unexpected '${c}': did you mean '${c}${c}'?`)
  }
  const char = String.fromCodePoint(source.codePointAt(start) ?? 0)
  throw new ConditionSyntaxError(
    source,
    start,
    `unexpected character '${char}': expected a field, value, operator or parenthesis`,
  )
}

function skipSpace(source: string, i: number): number {
  while (
    i < source.length &&
    (source[i] === ' ' || source[i] === '\t' || source[i] === '\n' || source[i] === '\r')
  )
    i++
  return i
}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9'
}

function isNameStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_'
}

function isNameChar(c: string): boolean {
  return isNameStart(c) || isDigit(c)
}
