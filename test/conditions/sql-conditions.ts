import fc from 'fast-check'
import { numberText, text } from './sql-rows.ts'

/**
 * A generated condition in our syntax and the same condition in SQL over
 * `r(after jsonb, before jsonb, kind text, changed text[])`. `prec` is the binding strength
 * of the outermost construct (1 OR, 2 AND, 3 NOT, 4 atom), so parentheses go only where needed
 * and both parsers must agree on precedence.
 */
export interface Generated {
  readonly src: string
  readonly sql: string
  readonly prec: number
}

type Term = { src: string; sql: string }

const atom = (src: string, sql: string): Generated => ({ src, sql, prec: 4 })
const sqlText = (s: string) => `'${s.replaceAll("'", "''")}'`
const jsonPath = (path: readonly string[]) => sqlText(`{${path.join(',')}}`)

// ---- operands: each sql is a jsonb expression, SQL NULL for a missing key or JSON null

const scopes = fc.constantFrom(
  { src: '', sql: 'coalesce(r.after, r.before)' },
  { src: 'after.', sql: 'r.after' },
  { src: 'new.', sql: 'r.after' },
  { src: 'before.', sql: 'r.before' },
  { src: 'OLD.', sql: 'r.before' },
)

/** `raw` is SQL NULL only for a missing key, as HAS_FIELD needs. */
function field(paths: readonly (readonly string[])[]): fc.Arbitrary<Term & { raw: string }> {
  return fc.tuple(scopes, fc.constantFrom(...paths), fc.boolean()).map(([scope, path, quote]) => {
    const first = quote && scope.src === '' ? `\`${path[0]}\`` : path[0]
    const src = `${scope.src}${[first, ...path.slice(1)].join('.')}`
    const raw = `(${scope.sql} #> ${jsonPath(path)})`
    return { src, raw, sql: `nullif(${raw}, 'null'::jsonb)` }
  })
}

const numberField = field([['n1'], ['n2'], ['o', 'k'], ['a', '0']])
const stringField = field([['s1'], ['s2'], ['status'], ['o', 't']])
const booleanField = field([['b1']])
const anyField = field([
  ['n1'],
  ['s1'],
  ['b1'],
  ['o'],
  ['a'],
  ['status'],
  ['o', 'k'],
  ['missing'],
  ['n1', 'x'],
])

const numberLiteral = numberText.map((t): Term => ({ src: t, sql: `${sqlText(t)}::jsonb` }))

const stringLiteral = fc
  .tuple(text, fc.constantFrom('sql', 'backslash', 'double'))
  .map(([s, style]): Term => {
    const src =
      style === 'double'
        ? `"${s.replaceAll('\\', '\\\\').replaceAll('"', '""')}"`
        : `'${s.replaceAll('\\', '\\\\').replaceAll("'", style === 'sql' ? "''" : "\\'")}'`
    return { src, sql: `to_jsonb(${sqlText(s)}::text)` }
  })

const booleanLiteral = fc.constantFrom('true', 'FALSE', 'True').map((b): Term => {
  return { src: b, sql: `'${b.toLowerCase()}'::jsonb` }
})

const nullLiteral = fc.constantFrom('null', 'NULL').map((src): Term => ({ src, sql: 'NULL' }))

const scalarLiteral = fc.oneof(numberLiteral, stringLiteral, booleanLiteral, nullLiteral)
const anyOperand = fc.oneof(anyField, scalarLiteral)

// ---- atoms

const orderOp = fc.constantFrom('<', '<=', '>', '>=')

const numberOrder = fc
  .tuple(fc.oneof(numberField, numberLiteral), orderOp, fc.oneof(numberField, numberLiteral))
  .map(([a, op, b]) => atom(`${a.src} ${op} ${b.src}`, `((${a.sql})::numeric ${op} (${b.sql})::numeric)`))

const stringOrder = fc
  .tuple(fc.oneof(stringField, stringLiteral), orderOp, fc.oneof(stringField, stringLiteral))
  .map(([a, op, b]) =>
    atom(`${a.src} ${op} ${b.src}`, `(((${a.sql}) #>> '{}') COLLATE "C" ${op} ((${b.sql}) #>> '{}'))`),
  )

/** `x = null` is IS NULL in our language (a deliberate difference from SQL), so translate it that way. */
function equality(a: Term, op: string, b: Term): Generated {
  const negated = op === '!=' || op === '<>'
  const other = a.sql === 'NULL' ? b : b.sql === 'NULL' ? a : undefined
  const src = `${a.src} ${op} ${b.src}`
  if (other !== undefined) return atom(src, `((${other.sql}) IS ${negated ? 'NOT ' : ''}NULL)`)
  return atom(src, `(${a.sql} ${negated ? '<>' : '='} ${b.sql})`)
}

const equalityOp = fc.constantFrom('=', '==', '!=', '<>')
const anyEquality = fc.tuple(anyOperand, equalityOp, anyOperand).map(([a, op, b]) => equality(a, op, b))
const numberEquality = fc
  .tuple(fc.oneof(numberField, numberLiteral), equalityOp, fc.oneof(numberField, numberLiteral))
  .map(([a, op, b]) => equality(a, op, b))

const isNullAtom = fc
  .tuple(anyField, fc.constantFrom('IS NULL', 'is not null', 'IS NOT NULL'))
  .map(([f, test]) => atom(`${f.src} ${test}`, `((${f.sql}) ${test.toUpperCase()})`))

/** `x IN (a, null)` means `x = a OR x IS NULL` here; SQL's IN would give NULL instead. */
const inAtom = fc
  .tuple(anyField, fc.boolean(), fc.array(scalarLiteral, { minLength: 1, maxLength: 4 }))
  .map(([f, negated, list]) => {
    const values = list.filter((l) => l.sql !== 'NULL').map((l) => l.sql)
    const parts = [
      ...(values.length > 0 ? [`(${f.sql}) IN (${values.join(', ')})`] : []),
      ...(values.length < list.length ? [`(${f.sql}) IS NULL`] : []),
    ]
    const src = `${f.src} ${negated ? 'NOT IN' : 'IN'} (${list.map((l) => l.src).join(', ')})`
    return atom(src, `(${negated ? 'NOT ' : ''}(${parts.join(' OR ')}))`)
  })

const truthAtom = fc.oneof(
  booleanField.map((f) => atom(f.src, `((${f.sql})::boolean)`)),
  fc.constantFrom('true', 'FALSE', 'null').map((b) => atom(b, `(${b.toUpperCase()}::boolean)`)),
)

// ---- functions

const changedPaths = fc.constantFrom(['n1'], ['s1'], ['status'], ['o'], ['o', 'k'], ['a'], ['missing'])

function changedSql(path: readonly string[]): string {
  const p = jsonPath(path)
  const listed = path.length === 1 ? `${sqlText(path[0]!)} = ANY(r.changed) OR ` : ''
  return (
    `(CASE r.kind WHEN 'INSERT' THEN (r.after #> ${p}) IS NOT NULL WHEN 'DELETE' THEN false ` +
    `ELSE (${listed}(r.before #> ${p}) IS DISTINCT FROM (r.after #> ${p})) END)`
  )
}

/** The image's value at `path` equals `value`, with null meaning IS NULL; never SQL NULL. */
function matchesSql(image: string, path: readonly string[], value: Term): string {
  const read = `nullif(${image} #> ${jsonPath(path)}, 'null'::jsonb)`
  return value.sql === 'NULL' ? `(${read} IS NULL)` : `coalesce(${read} = ${value.sql}, false)`
}

const changedCall = fc
  .tuple(fc.constantFrom('CHANGED', 'changed', 'field_changed'), changedPaths)
  .map(([name, path]) => atom(`${name}(${path.join('.')})`, changedSql(path)))

const changedWithCall = fc
  .tuple(fc.constantFrom('CHANGED_TO', 'changed_from'), changedPaths, scalarLiteral)
  .map(([name, path, value]) => {
    const image = name === 'CHANGED_TO' ? 'r.after' : 'r.before'
    const sql = `(${changedSql(path)} AND ${matchesSql(image, path, value)})`
    return atom(`${name}(${path.join('.')}, ${value.src})`, sql)
  })

const statusChangedTo = scalarLiteral.map((value) =>
  atom(
    `status_changed_to(${value.src})`,
    `(${changedSql(['status'])} AND ${matchesSql('r.after', ['status'], value)})`,
  ),
)

const hasFieldCall = anyField.map((f) => atom(`HAS_FIELD(${f.src})`, `(${f.raw} IS NOT NULL)`))

const kindCall = fc
  .constantFrom(
    ['IS_NEW()', 'INSERT'],
    ['is_new()', 'INSERT'],
    ['IS_DELETED()', 'DELETE'],
    ['is_deleted()', 'DELETE'],
  )
  .map(([src, kind]) => atom(src!, `(r.kind = '${kind}')`))

/** Orderings weigh more: exact numbers and code point order only show there. */
const atoms = fc.oneof(
  { arbitrary: numberOrder, weight: 4 },
  { arbitrary: stringOrder, weight: 4 },
  { arbitrary: numberEquality, weight: 2 },
  anyEquality,
  isNullAtom,
  inAtom,
  truthAtom,
  changedCall,
  changedWithCall,
  statusChangedTo,
  hasFieldCall,
  kindCall,
)

// ---- logic

function wrap(g: Generated, minPrec: number, extraParens: boolean): Term {
  return g.prec < minPrec || extraParens ? { src: `(${g.src})`, sql: `(${g.sql})` } : g
}

function binary(word: fc.Arbitrary<string>, sqlWord: string, prec: number, operand: fc.Arbitrary<Generated>) {
  return fc.tuple(operand, word, operand, fc.boolean(), fc.boolean()).map(([l, w, r, pl, pr]): Generated => {
    const a = wrap(l, prec, pl && l.prec === 4)
    const b = wrap(r, prec, pr && r.prec === 4)
    return { src: `${a.src} ${w} ${b.src}`, sql: `${a.sql} ${sqlWord} ${b.sql}`, prec }
  })
}

export const condition: fc.Arbitrary<Generated> = fc.letrec<{ cond: Generated }>((tie) => ({
  cond: fc.oneof(
    { depthSize: 'small', maxDepth: 5, withCrossShrink: true },
    atoms,
    binary(fc.constantFrom('AND', 'and', '&&'), 'AND', 2, tie('cond')),
    binary(fc.constantFrom('OR', 'Or', '||'), 'OR', 1, tie('cond')),
    fc.tuple(fc.constantFrom('NOT ', 'not ', '!'), tie('cond')).map(([w, g]): Generated => {
      const inner = wrap(g, 3, false)
      return { src: `${w}${inner.src}`, sql: `NOT ${inner.sql}`, prec: 3 }
    }),
  ),
})).cond
