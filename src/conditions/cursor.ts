import { ConditionSyntaxError } from '../errors/errors.ts'
import { type Token, type TokenKind, tokenize } from './lex.ts'

export const keywords = new Set(['AND', 'OR', 'NOT', 'IN', 'IS', 'NULL', 'TRUE', 'FALSE'])

/** The parser's position in the token list; every error it raises points at a token. */
export class Cursor {
  readonly source: string
  readonly #tokens: Token[]
  #index = 0

  constructor(source: string) {
    this.source = source
    this.#tokens = tokenize(source)
  }

  peek(ahead = 0): Token {
    const last = this.#tokens.length - 1
    return this.#tokens[Math.min(this.#index + ahead, last)]!
  }

  next(): Token {
    const token = this.peek()
    if (token.kind !== 'eof') this.#index++
    return token
  }

  /** True when the token is the (case-insensitive) keyword `word`, or one of its operator spellings. */
  is(word: string, op?: string, ahead = 0): boolean {
    const t = this.peek(ahead)
    if (t.kind === 'name') return t.text.toUpperCase() === word
    return op !== undefined && t.kind === 'op' && t.text === op
  }

  expect(kind: TokenKind, expected: string): Token {
    const t = this.peek()
    if (t.kind !== kind) this.fail(t, `expected ${expected}, found ${describeToken(t)}`)
    return this.next()
  }

  /** Throws a syntax error pointing at `at` (a token or AST node). */
  fail(at: { readonly start: number }, message: string): never {
    throw new ConditionSyntaxError(this.source, at.start, message)
  }

  /** The source text of a token or AST node, for messages. */
  text(at: { readonly start: number; readonly end: number }): string {
    return this.source.slice(at.start, at.end)
  }
}

/** How a token is named in error messages. */
export function describeToken(t: Token): string {
  switch (t.kind) {
    case 'eof':
      return 'end of condition'
    case 'string':
      return `string ${t.text}`
    case 'number':
      return `number ${t.text}`
    case 'name':
      return keywords.has(t.text.toUpperCase()) ? `keyword ${t.text.toUpperCase()}` : `'${t.text}'`
    default:
      return `'${t.text}'`
  }
}
