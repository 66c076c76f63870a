import type { ExactNumber } from '../json/exact.ts'

/** A literal's value. Numbers a double cannot hold exactly (9007199254740993, 12.50) stay ExactNumber. */
export type Scalar = string | number | ExactNumber | boolean | null

/** Where a node's text sits in the condition source: offsets [start, end), for errors and explain. */
export interface Span {
  readonly start: number
  readonly end: number
}

export interface Literal extends Span {
  readonly kind: 'literal'
  readonly value: Scalar
}

/**
 * Which object a field path reads: `row` is the after image, or the before image for DELETE;
 * `after`/`before` are the explicit `after.x`/`new.x` and `before.x`/`old.x` forms; `event` is
 * `event.<name>`, a field of the change event itself (path has exactly one element).
 */
export type FieldScope = 'row' | 'after' | 'before' | 'event'

export interface Field extends Span {
  readonly kind: 'field'
  readonly scope: FieldScope
  /** JSON keys (or array indexes written as digits) from the scope's root; empty = the whole image. */
  readonly path: readonly string[]
}

export type FunctionName = 'CHANGED' | 'CHANGED_TO' | 'CHANGED_FROM' | 'HAS_FIELD' | 'IS_NEW' | 'IS_DELETED'

/** A function call, aliases already resolved: `status_changed_to('x')` is CHANGED_TO with field `status`. */
export interface Call extends Span {
  readonly kind: 'call'
  readonly name: FunctionName
  readonly field: Field | null
  readonly value: Literal | null
}

export type Operand = Literal | Field | Call

/** `==` is stored as `=`, `<>` as `!=`; `x = null` / `x != null` are stored as IsNull. */
export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>='

export interface Compare extends Span {
  readonly kind: 'compare'
  readonly op: CompareOp
  readonly left: Operand
  readonly right: Operand
}

export interface In extends Span {
  readonly kind: 'in'
  readonly negated: boolean
  readonly operand: Operand
  readonly list: readonly Literal[]
}

export interface IsNull extends Span {
  readonly kind: 'is_null'
  readonly negated: boolean
  readonly operand: Operand
}

export interface Logical extends Span {
  readonly kind: 'and' | 'or'
  readonly left: Expr
  readonly right: Expr
}

export interface Not extends Span {
  readonly kind: 'not'
  readonly operand: Expr
}

/** A condition. An Operand in condition position must evaluate to a boolean (or null). */
export type Expr = Logical | Not | Compare | In | IsNull | Operand
