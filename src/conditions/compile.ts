import { AppError, ErrorCode } from '../errors/errors.ts'
import type { ChangeEvent } from '../event/event.ts'
import type { Compare, Expr, Field, In, Operand } from './ast.ts'
import { compileLookup } from './fields.ts'
import { compileCall } from './functions.ts'
import { equalValues, orderValues, typeName } from './values.ts'

/**
 * A compiled node. Conditions yield true, false or null (unknown, as in SQL); operands yield
 * their value, null when absent. Evaluation errors are thrown as AppError OB004.
 */
export type Evaluate = (event: ChangeEvent) => unknown
export type Predicate = (event: ChangeEvent) => boolean | null

/** Every node's closure, so explain() runs exactly the code test() runs. */
export type CompiledNodes = ReadonlyMap<Expr, Evaluate>

interface Context {
  readonly source: string
  readonly nodes: Map<Expr, Evaluate>
}

export function compileExpression(
  expr: Expr,
  source: string,
): { predicate: Predicate; nodes: CompiledNodes } {
  const nodes = new Map<Expr, Evaluate>()
  return { predicate: compilePredicate(expr, { source, nodes }), nodes }
}

function compilePredicate(expr: Expr, ctx: Context): Predicate {
  const fn = buildPredicate(expr, ctx)
  ctx.nodes.set(expr, fn)
  return fn
}

function buildPredicate(expr: Expr, ctx: Context): Predicate {
  switch (expr.kind) {
    case 'and':
      return and(compilePredicate(expr.left, ctx), compilePredicate(expr.right, ctx))
    case 'or':
      return or(compilePredicate(expr.left, ctx), compilePredicate(expr.right, ctx))
    case 'not': {
      const operand = compilePredicate(expr.operand, ctx)
      return (e) => {
        const v = operand(e)
        return v === null ? null : !v
      }
    }
    case 'compare':
      return compileCompare(expr, ctx)
    case 'in':
      return compileIn(expr, ctx)
    case 'is_null': {
      const read = compileOperand(expr.operand, ctx)
      return expr.negated ? (e) => read(e) !== null : (e) => read(e) === null
    }
    case 'call':
      return compileCall(expr)
    case 'field':
      return compileBooleanField(expr, ctx)
    case 'literal': {
      const value = expr.value as boolean | null
      return () => value
    }
  }
}

/** SQL's three-valued AND: false wins, then unknown; the right side is skipped once the left is false. */
function and(left: Predicate, right: Predicate): Predicate {
  return (e) => {
    const a = left(e)
    if (a === false) return false
    const b = right(e)
    if (b === false) return false
    return a === null || b === null ? null : true
  }
}

function or(left: Predicate, right: Predicate): Predicate {
  return (e) => {
    const a = left(e)
    if (a === true) return true
    const b = right(e)
    if (b === true) return true
    return a === null || b === null ? null : false
  }
}

function compileOperand(operand: Operand, ctx: Context): Evaluate {
  const fn = buildOperand(operand)
  ctx.nodes.set(operand, fn)
  return fn
}

function buildOperand(operand: Operand): Evaluate {
  if (operand.kind === 'call') return compileCall(operand)
  if (operand.kind === 'field') return readField(operand)
  const value = operand.value
  return () => value
}

function readField(field: Field): Evaluate {
  const lookup = compileLookup(field.scope, field.path, true)
  return (e) => {
    const value = lookup(e)
    return value === undefined ? null : value
  }
}

function compileBooleanField(field: Field, ctx: Context): Predicate {
  const read = readField(field)
  const text = ctx.source.slice(field.start, field.end)
  return (e) => {
    const value = read(e)
    if (value === null || typeof value === 'boolean') return value
    throw evaluationError(
      `${text} is ${article(typeName(value))}, not a boolean; compare it, as in ${text} = 'x'`,
    )
  }
}

const orderTests = {
  '<': (order: number) => order < 0,
  '<=': (order: number) => order <= 0,
  '>': (order: number) => order > 0,
  '>=': (order: number) => order >= 0,
} as const

function compileCompare(expr: Compare, ctx: Context): Predicate {
  const left = compileOperand(expr.left, ctx)
  const right = compileOperand(expr.right, ctx)
  const op = expr.op
  if (op === '=' || op === '!=') {
    const equal = op === '='
    return (e) => {
      const a = left(e)
      const b = right(e)
      return a === null || b === null ? null : equalValues(a, b) === equal
    }
  }
  const test = orderTests[op]
  const text = ctx.source.slice(expr.start, expr.end)
  return (e) => {
    const a = left(e)
    const b = right(e)
    if (a === null || b === null) return null
    const order = orderValues(a, b)
    if (Number.isNaN(order)) {
      throw evaluationError(
        `cannot compare ${typeName(a)} with ${typeName(b)} using '${op}' in ${text}: ` +
          'only two numbers or two strings can be ordered',
      )
    }
    return test(order)
  }
}

/** `x IN (a, null)` is `x = a OR x IS NULL`, matching the `= null` rule. */
function compileIn(expr: In, ctx: Context): Predicate {
  const read = compileOperand(expr.operand, ctx)
  const values = expr.list.map((item) => item.value).filter((v) => v !== null)
  const listHasNull = values.length !== expr.list.length
  const negated = expr.negated
  return (e) => {
    const value = read(e)
    if (value === null) return listHasNull ? !negated : null
    for (let i = 0; i < values.length; i++) if (equalValues(value, values[i])) return !negated
    return negated
  }
}

function evaluationError(message: string): AppError {
  return new AppError(ErrorCode.ConditionEvaluationFailed, message)
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`
}
