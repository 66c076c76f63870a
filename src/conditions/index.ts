import { AppError, coerceError, ErrorCode } from '../errors/errors.ts'
import type { ChangeEvent } from '../event/event.ts'
import type { Expr } from './ast.ts'
import { compileExpression } from './compile.ts'
import { type ExplainNode, explainExpression } from './explain.ts'
import { collectColumns } from './fields.ts'
import { parseCondition } from './parse.ts'

export type * from './ast.ts'
export type { ExplainNode } from './explain.ts'
export { parseCondition }

export interface CompileOptions {
  /** Receives every evaluation failure (code OB004); the condition is false for that event. */
  onError?: (err: AppError) => void
}

/** A condition compiled once at load and evaluated per event. */
export interface CompiledCondition {
  readonly source: string
  /** True only when the condition is true: false, unknown (null) and evaluation errors are all false. Never throws. */
  test(event: ChangeEvent): boolean
  /** Each sub-expression's text and value, for dry runs. Never throws; failures appear as `error`. */
  explain(event: ChangeEvent): ExplainNode
}

/**
 * Parses and compiles a condition (docs/conditions.md).
 * @throws ConditionSyntaxError (OB003) with the offending token's offset and column.
 */
export function compileCondition(source: string, options: CompileOptions = {}): CompiledCondition {
  const ast = parseCondition(source)
  const { predicate, nodes } = compileExpression(ast, source)
  const onError = options.onError
  return {
    source,
    test(event) {
      try {
        return predicate(event) === true
      } catch (err) {
        report(onError, err)
        return false
      }
    },
    explain: (event) => explainExpression(ast, nodes, source, event),
  }
}

function report(onError: ((err: AppError) => void) | undefined, thrown: unknown): void {
  if (onError === undefined) return
  const err = coerceError(thrown)
  const appError =
    err instanceof AppError
      ? err
      : new AppError(ErrorCode.ConditionEvaluationFailed, `condition evaluation failed: ${err.message}`, {
          cause: err,
        })
  try {
    onError(appError)
  } catch {
    // test() promises never to throw; a failing error sink must not turn into a crashed worker.
  }
}

/**
 * The row columns a condition reads, sorted and unique, so a loader can warn about names that no
 * watched column has. Bare names that fall back to an event field (tenant_id, …) are not listed.
 * @throws ConditionSyntaxError when given source that does not parse.
 */
export function referencedFields(condition: string | Expr): string[] {
  return collectColumns(typeof condition === 'string' ? parseCondition(condition) : condition)
}
