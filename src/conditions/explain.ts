import { describeError } from '../errors/errors.ts'
import type { ChangeEvent } from '../event/event.ts'
import type { Call, Expr } from './ast.ts'
import type { CompiledNodes } from './compile.ts'
import { lookupIn } from './fields.ts'

/** One sub-expression of a condition and what it evaluated to, for dry runs (`observers test`). */
export interface ExplainNode {
  /** The sub-expression as written in the condition. */
  readonly text: string
  /**
   * Conditions: true, false or null (unknown, e.g. a comparison with a missing field). Operands:
   * the value read, null when absent. Undefined when skipped or when evaluation failed.
   */
  readonly value: unknown
  /** Not evaluated: AND/OR decided already, or the left side failed. */
  readonly skipped?: true
  /** The OB004 message when evaluating this node failed. */
  readonly error?: string
  readonly children: readonly ExplainNode[]
}

interface Context {
  readonly source: string
  readonly nodes: CompiledNodes
  readonly event: ChangeEvent
}

export function explainExpression(
  expr: Expr,
  nodes: CompiledNodes,
  source: string,
  event: ChangeEvent,
): ExplainNode {
  return explain(expr, { source, nodes, event })
}

function explain(expr: Expr, ctx: Context): ExplainNode {
  const text = ctx.source.slice(expr.start, expr.end)
  const evaluate = ctx.nodes.get(expr)!
  const children = explainChildren(expr, ctx)
  try {
    return { text, value: evaluate(ctx.event), children }
  } catch (err) {
    return { text, value: undefined, error: describeError(err), children }
  }
}

function skip(expr: Expr, source: string): ExplainNode {
  const children = childExpressions(expr).map((child) => skip(child, source))
  return { text: source.slice(expr.start, expr.end), value: undefined, skipped: true, children }
}

function explainChildren(expr: Expr, ctx: Context): ExplainNode[] {
  if (expr.kind === 'and' || expr.kind === 'or') {
    const left = explain(expr.left, ctx)
    const decided = left.error !== undefined || left.value === (expr.kind === 'or')
    return [left, decided ? skip(expr.right, ctx.source) : explain(expr.right, ctx)]
  }
  if (expr.kind === 'call') return explainCall(expr, ctx.event)
  return childExpressions(expr).map((child) => explain(child, ctx))
}

function childExpressions(expr: Expr): Expr[] {
  switch (expr.kind) {
    case 'and':
    case 'or':
      return [expr.left, expr.right]
    case 'compare':
      return [expr.left, expr.right]
    case 'not':
    case 'in':
    case 'is_null':
      return [expr.operand]
    default:
      return []
  }
}

/** CHANGED* show both images' values, since those decide the result. */
function explainCall(call: Call, event: ChangeEvent): ExplainNode[] {
  if (call.field === null || call.name === 'HAS_FIELD') return []
  const path = call.field.path
  const name = path.join('.')
  return [
    { text: `before.${name}`, value: lookupIn(event.before, path) ?? null, children: [] },
    { text: `after.${name}`, value: lookupIn(event.after, path) ?? null, children: [] },
  ]
}
