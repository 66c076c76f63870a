import type { ChangeEvent } from '../event/event.ts'
import type { Call, FunctionName, Scalar } from './ast.ts'
import { compileLookup } from './fields.ts'
import { equalValues, sameJson } from './values.ts'

export interface FunctionSpec {
  readonly name: FunctionName
  /** What each argument must be: a field path, or a literal value. */
  readonly params: readonly ('field' | 'value')[]
  /** CHANGED* compare before with after themselves, so their field must be a bare column path. */
  readonly bareField: boolean
  /** status_changed_to(v) is CHANGED_TO(status, v). */
  readonly impliedField?: string
  /** As shown in error messages. */
  readonly signature: string
}

const specs: readonly FunctionSpec[] = [
  { name: 'CHANGED', params: ['field'], bareField: true, signature: 'CHANGED(field)' },
  { name: 'CHANGED_TO', params: ['field', 'value'], bareField: true, signature: 'CHANGED_TO(field, value)' },
  {
    name: 'CHANGED_FROM',
    params: ['field', 'value'],
    bareField: true,
    signature: 'CHANGED_FROM(field, value)',
  },
  { name: 'HAS_FIELD', params: ['field'], bareField: false, signature: 'HAS_FIELD(field)' },
  { name: 'IS_NEW', params: [], bareField: false, signature: 'IS_NEW()' },
  { name: 'IS_DELETED', params: [], bareField: false, signature: 'IS_DELETED()' },
]

const aliases: readonly [string, FunctionSpec][] = [
  ['field_changed', { ...specs[0]!, signature: 'field_changed(field)' }],
  [
    'status_changed_to',
    { ...specs[1]!, params: ['value'], impliedField: 'status', signature: 'status_changed_to(value)' },
  ],
]

/** Function specs by lower-case name; names are case-insensitive. */
export const functionsByName: ReadonlyMap<string, FunctionSpec> = new Map([
  ...specs.map((spec): [string, FunctionSpec] => [spec.name.toLowerCase(), spec]),
  ...aliases,
])

/** Names offered by "did you mean" suggestions. */
export const functionNames: readonly string[] = [
  ...specs.map((s) => s.name),
  ...aliases.map(([name]) => name),
]

/** Functions are two-valued: they never return null, so `NOT CHANGED(x)` is always defined. */
export function compileCall(call: Call): (event: ChangeEvent) => boolean {
  const field = call.field
  switch (call.name) {
    case 'IS_NEW':
      return (e) => e.event === 'INSERT'
    case 'IS_DELETED':
      return (e) => e.event === 'DELETE'
    case 'HAS_FIELD': {
      const lookup = compileLookup(field!.scope, field!.path)
      return (e) => lookup(e) !== undefined
    }
    case 'CHANGED':
      return compileChanged(field!.path)
    case 'CHANGED_TO':
      return compileChangedWith(field!.path, 'after', call.value!.value)
    case 'CHANGED_FROM':
      return compileChangedWith(field!.path, 'before', call.value!.value)
  }
}

function compileChanged(path: readonly string[]): (event: ChangeEvent) => boolean {
  const before = compileLookup('before', path)
  const after = compileLookup('after', path)
  // The capture trigger lists changed top-level columns; nested paths can only be diffed.
  const column = path.length === 1 ? path[0] : undefined
  return (e) => {
    if (e.event === 'INSERT') return after(e) !== undefined
    if (e.event === 'DELETE') return false
    if (column !== undefined && e.changed.includes(column)) return true
    return !sameJson(before(e), after(e))
  }
}

function compileChangedWith(
  path: readonly string[],
  image: 'after' | 'before',
  expected: Scalar,
): (event: ChangeEvent) => boolean {
  const changed = compileChanged(path)
  const read = compileLookup(image, path)
  return (e) => changed(e) && matches(read(e), expected)
}

/** `value = expected` where a null literal means IS NULL, as in comparisons. */
function matches(value: unknown, expected: Scalar): boolean {
  if (value === undefined || value === null) return expected === null
  return expected !== null && equalValues(value, expected)
}
