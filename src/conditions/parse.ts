import type { CompareOp, Expr, In, IsNull, Literal, Operand } from './ast.ts'
import { Cursor, describeToken } from './cursor.ts'
import type { Token } from './lex.ts'
import { describeOperand, parseOperand } from './operand.ts'
import { didYouMean } from './suggest.ts'

const compareOps: ReadonlyMap<string, CompareOp> = new Map([
  ['=', '='],
  ['==', '='],
  ['!=', '!='],
  ['<>', '!='],
  ['<', '<'],
  ['<=', '<='],
  ['>', '>'],
  ['>=', '>='],
])

/** Deep enough for any hand-written condition; the bound keeps hostile input from overflowing the stack. */
const maxNesting = 64
const conditionExpected = "a condition (a field, value or function call, NOT, or '(')"

/**
 * Parses a condition into its AST.
 * @throws ConditionSyntaxError (OB003) pointing at the offending token.
 */
export function parseCondition(source: string): Expr {
  const c = new Cursor(source)
  const first = c.peek()
  if (first.kind === 'eof')
    c.fail({ start: 0 }, "empty condition: expected a condition such as status = 'shipped'")
  const expr = parseOr(c, 0)
  const rest = c.peek()
  if (rest.kind === ')') c.fail(rest, "unmatched ')': expected AND, OR or end of condition")
  if (rest.kind !== 'eof') unexpected(c, rest, 'AND, OR or end of condition')
  return expr
}

function parseOr(c: Cursor, depth: number): Expr {
  let left = parseAnd(c, depth)
  while (c.is('OR', '||')) {
    c.next()
    const right = parseAnd(c, depth)
    left = { kind: 'or', left, right, start: left.start, end: right.end }
  }
  return left
}

function parseAnd(c: Cursor, depth: number): Expr {
  let left = parseNot(c, depth)
  while (c.is('AND', '&&')) {
    c.next()
    const right = parseNot(c, depth)
    left = { kind: 'and', left, right, start: left.start, end: right.end }
  }
  return left
}

function parseNot(c: Cursor, depth: number): Expr {
  if (!c.is('NOT', '!')) return parsePrimary(c, depth)
  const t = c.next()
  const operand = parseNot(c, nest(c, t, depth))
  return { kind: 'not', operand, start: t.start, end: operand.end }
}

function parsePrimary(c: Cursor, depth: number): Expr {
  const open = c.peek()
  if (open.kind !== '(') return parseComparison(c, parseOperand(c, conditionExpected))
  c.next()
  const inner = parseOr(c, nest(c, open, depth))
  const close = c.peek()
  if (close.kind !== ')') unexpected(c, close, `')' to close the '(' at column ${open.start + 1}`)
  c.next()
  // The node's text includes its parentheses, so explain() shows `(a OR b)` as written.
  return { ...inner, start: open.start, end: close.end }
}

function nest(c: Cursor, at: Token, depth: number): number {
  if (depth >= maxNesting)
    c.fail(at, `condition nests too deeply: more than ${maxNesting} levels of '(' or NOT`)
  return depth + 1
}

/** Explains the most likely mistakes behind an unexpected token. */
function unexpected(c: Cursor, t: Token, expected: string): never {
  if (t.kind === 'op' && compareOps.has(t.text)) {
    c.fail(
      t,
      `expected ${expected}, found '${t.text}': comparisons cannot be chained or applied to a ` +
        'parenthesized condition; join comparisons with AND',
    )
  }
  const hint = t.kind === 'name' ? didYouMean(t.text, ['AND', 'OR']) : ''
  c.fail(t, `expected ${expected}, found ${describeToken(t)}${hint}`)
}

function parseComparison(c: Cursor, left: Operand): Expr {
  const t = c.peek()
  const op = t.kind === 'op' ? compareOps.get(t.text) : undefined
  if (op !== undefined) {
    c.next()
    return makeComparison(c, t, op, left, parseOperand(c, `a value after '${t.text}'`))
  }
  if (c.is('IS')) return parseIsNull(c, left)
  if (c.is('IN')) return parseIn(c, left, false)
  if (c.is('NOT') && c.is('IN', undefined, 1)) {
    c.next()
    return parseIn(c, left, true)
  }
  if (left.kind === 'literal' && typeof left.value !== 'boolean' && left.value !== null) {
    const ops = '=, !=, <, <=, >, >=, IN, IS NULL'
    c.fail(t, `expected a comparison (${ops}) after ${describeOperand(c, left)}, found ${describeToken(t)}`)
  }
  return left
}

function makeComparison(c: Cursor, opToken: Token, op: CompareOp, left: Operand, right: Operand): Expr {
  const span = { start: left.start, end: right.end }
  const other = isNull(left) ? right : isNull(right) ? left : undefined
  if (other !== undefined) {
    // `x = null` means IS NULL: people write it expecting that, and SQL's answer (never true) helps no one.
    if (op === '=' || op === '!=') return { kind: 'is_null', negated: op === '!=', operand: other, ...span }
    c.fail(opToken, `null cannot be ordered with '${opToken.text}': use IS NULL or IS NOT NULL`)
  }
  const ordering = op !== '=' && op !== '!='
  if (ordering && (isBoolean(left) || isBoolean(right))) {
    c.fail(opToken, `booleans cannot be ordered with '${opToken.text}': use = or !=`)
  }
  return { kind: 'compare', op, left, right, ...span }
}

function isNull(o: Operand): boolean {
  return o.kind === 'literal' && o.value === null
}

function isBoolean(o: Operand): boolean {
  return o.kind === 'literal' && typeof o.value === 'boolean'
}

function parseIsNull(c: Cursor, operand: Operand): IsNull {
  c.next()
  const negated = c.is('NOT')
  if (negated) c.next()
  const t = c.peek()
  if (!c.is('NULL')) c.fail(t, `expected NULL after ${negated ? 'IS NOT' : 'IS'}, found ${describeToken(t)}`)
  c.next()
  return { kind: 'is_null', negated, operand, start: operand.start, end: t.end }
}

function parseIn(c: Cursor, operand: Operand, negated: boolean): In {
  c.next()
  c.expect('(', "'(' after IN, as in status IN ('new', 'paid')")
  const list: Literal[] = []
  for (;;) {
    const item = parseOperand(c, "a literal value ('string', number, true, false or null) in the IN list")
    if (item.kind !== 'literal') {
      c.fail(item, `IN lists hold literal values only, found ${describeOperand(c, item)}`)
    }
    list.push(item)
    const t = c.next()
    if (t.kind === ')') return { kind: 'in', negated, operand, list, start: operand.start, end: t.end }
    if (t.kind !== ',') c.fail(t, `expected ',' or ')' in the IN list, found ${describeToken(t)}`)
  }
}
