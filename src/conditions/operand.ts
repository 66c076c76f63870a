import { ExactNumber } from '../json/exact.ts'
import type { Call, Field, Literal, Operand, Scalar } from './ast.ts'
import { type Cursor, describeToken, keywords } from './cursor.ts'
import { eventFields, scopePrefixes } from './fields.ts'
import { type FunctionSpec, functionNames, functionsByName } from './functions.ts'
import type { Token } from './lex.ts'
import { didYouMean } from './suggest.ts'

const valueExpected = "a value (field, 'string', number, true, false or null)"
const literalExpected = "a literal value ('string', number, true, false or null)"

/** A literal, field path or function call. */
export function parseOperand(c: Cursor, expected = valueExpected): Operand {
  const t = c.peek()
  if (t.kind === 'string') return literal(c.next(), t.value)
  if (t.kind === 'number') return literal(c.next(), numberValue(t.text))
  if (t.kind === 'quoted_name') return parseField(c)
  if (t.kind === 'name') {
    const word = t.text.toUpperCase()
    if (word === 'TRUE' || word === 'FALSE') return literal(c.next(), word === 'TRUE')
    if (word === 'NULL') return literal(c.next(), null)
    if (!keywords.has(word)) return c.peek(1).kind === '(' ? parseCall(c) : parseField(c)
  }
  return c.fail(t, `expected ${expected}, found ${describeToken(t)}`)
}

/** Describes an operand for messages: "field 'x'", "function call 'f(…)'" or the literal as written. */
export function describeOperand(c: Cursor, o: Operand): string {
  const text = c.text(o)
  if (o.kind === 'field') return `field '${text}'`
  return o.kind === 'call' ? `function call '${text}'` : text
}

function literal(t: Token, value: Scalar): Literal {
  return { kind: 'literal', value, start: t.start, end: t.end }
}

/** Keeps the written digits whenever a double would not print back the same (9007199254740993, 12.50). */
function numberValue(text: string): number | ExactNumber {
  const n = Number(text)
  return String(n) === text ? n : new ExactNumber(text)
}

function parseField(c: Cursor): Field {
  const names = [c.next()]
  while (c.peek().kind === '.') {
    c.next()
    const t = c.peek()
    if (t.kind !== 'name' && t.kind !== 'quoted_name') {
      c.fail(t, `expected a field name after '.', found ${describeToken(t)}`)
    }
    names.push(c.next())
  }
  const first = names[0]!
  const span = { start: first.start, end: names.at(-1)!.end }
  const prefix = first.kind === 'name' ? first.text.toLowerCase() : ''
  const scope = scopePrefixes.get(prefix)
  if (scope !== undefined) return { kind: 'field', scope, path: names.slice(1).map((t) => t.value), ...span }
  if (prefix === 'event' && names.length > 1) return eventField(c, names, span)
  return { kind: 'field', scope: 'row', path: names.map((t) => t.value), ...span }
}

function eventField(c: Cursor, names: Token[], span: { start: number; end: number }): Field {
  const [, name, extra] = names as [Token, Token, Token?]
  if (!(eventFields as readonly string[]).includes(name.value)) {
    c.fail(
      name,
      `unknown event field '${name.value}'${didYouMean(name.value, eventFields)} ` +
        `(event fields: ${eventFields.join(', ')}; a column named event is after.event)`,
    )
  }
  if (extra !== undefined) c.fail(extra, `event.${name.value} has no fields inside it, found '${extra.text}'`)
  return { kind: 'field', scope: 'event', path: [name.value], ...span }
}

function parseCall(c: Cursor): Call {
  const nameToken = c.next()
  const spec = functionsByName.get(nameToken.text.toLowerCase())
  if (spec === undefined) {
    c.fail(nameToken, `unknown function '${nameToken.text}'${didYouMean(nameToken.text, functionNames)}`)
  }
  c.next()
  let field: Field | null = null
  if (spec.impliedField !== undefined) {
    field = {
      kind: 'field',
      scope: 'row',
      path: [spec.impliedField],
      start: nameToken.start,
      end: nameToken.end,
    }
  }
  let value: Literal | null = null
  for (const [i, param] of spec.params.entries()) {
    if (i > 0) expectComma(c, spec, param)
    if (param === 'field') field = parseFieldArgument(c, spec)
    else value = parseValueArgument(c, spec)
  }
  const close = c.peek()
  if (close.kind !== ')') c.fail(close, `${arity(spec)}: expected ')', found ${describeToken(close)}`)
  c.next()
  return { kind: 'call', name: spec.name, field, value, start: nameToken.start, end: close.end }
}

function arity(spec: FunctionSpec): string {
  const n = spec.params.length
  return `${spec.signature} takes ${n === 0 ? 'no arguments' : n === 1 ? '1 argument' : `${n} arguments`}`
}

function expectComma(c: Cursor, spec: FunctionSpec, next: 'field' | 'value'): void {
  const t = c.peek()
  if (t.kind === ',') {
    c.next()
    return
  }
  const what = next === 'field' ? 'a field' : 'a value'
  c.fail(t, `${arity(spec)}: expected ',' and ${what}, found ${describeToken(t)}`)
}

function parseFieldArgument(c: Cursor, spec: FunctionSpec): Field {
  const t = c.peek()
  const isName = t.kind === 'quoted_name' || (t.kind === 'name' && !keywords.has(t.text.toUpperCase()))
  if (!isName) c.fail(t, `${arity(spec)}: expected a field name, found ${describeToken(t)}`)
  const field = parseField(c)
  if (field.scope === 'event') c.fail(field, `${spec.signature} takes a row field, not an event field`)
  if (field.path.length === 0)
    c.fail(field, `${spec.signature} needs a field name, such as ${c.text(field)}.status`)
  if (spec.bareField && field.scope !== 'row') {
    const bare = field.path.join('.')
    c.fail(
      field,
      `${spec.name} compares before and after itself: write ${spec.name}(${bare}), not ${c.text(field)}`,
    )
  }
  return field
}

function parseValueArgument(c: Cursor, spec: FunctionSpec): Literal {
  const value = parseOperand(c, literalExpected)
  if (value.kind !== 'literal') {
    c.fail(value, `${spec.signature}: expected ${literalExpected}, found ${describeOperand(c, value)}`)
  }
  return value
}
