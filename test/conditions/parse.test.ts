import assert from 'node:assert/strict'
import { test } from 'node:test'
import { compileCondition, type Expr, parseCondition, referencedFields } from '../../src/conditions/index.ts'
import type { AppError } from '../../src/errors/errors.ts'
import { ExactNumber } from '../../src/json/exact.ts'
import { changeEvent, shipped } from './helpers.ts'

/** The AST as a compact Lisp-like string, to assert on structure without spans. */
function shape(e: Expr): string {
  switch (e.kind) {
    case 'and':
    case 'or':
      return `(${e.kind} ${shape(e.left)} ${shape(e.right)})`
    case 'not':
      return `(not ${shape(e.operand)})`
    case 'compare':
      return `(${e.op} ${shape(e.left)} ${shape(e.right)})`
    case 'in':
      return `(${e.negated ? 'not-in' : 'in'} ${shape(e.operand)} ${e.list.map(shape).join(' ')})`
    case 'is_null':
      return `(${e.negated ? 'is-not-null' : 'is-null'} ${shape(e.operand)})`
    case 'call':
      return `(${e.name}${e.field ? ` ${shape(e.field)}` : ''}${e.value ? ` ${shape(e.value)}` : ''})`
    case 'field':
      return `${e.scope}:${e.path.join('.')}`
    case 'literal':
      return JSON.stringify(e.value)
  }
}

test('both seed syntaxes parse to the same tree', () => {
  const sql = parseCondition("status = 'shipped' AND NOT is_deleted()")
  const js = parseCondition('status == "shipped" && !IS_DELETED()')
  assert.equal(shape(sql), '(and (= row:status "shipped") (not (IS_DELETED)))')
  assert.equal(shape(js), shape(sql))
})

test('NOT binds tighter than AND, AND tighter than OR, and comparisons tighter than NOT', () => {
  assert.equal(shape(parseCondition('a OR b AND c')), '(or row:a (and row:b row:c))')
  assert.equal(shape(parseCondition('a AND b OR c')), '(or (and row:a row:b) row:c)')
  assert.equal(shape(parseCondition('NOT a AND b')), '(and (not row:a) row:b)')
  assert.equal(shape(parseCondition('!a = 1')), '(not (= row:a 1))')
  assert.equal(shape(parseCondition('a OR b OR c')), '(or (or row:a row:b) row:c)')
})

test('= null and != null become IS NULL tests; <> and == are normalised', () => {
  assert.equal(shape(parseCondition('a = null')), '(is-null row:a)')
  assert.equal(shape(parseCondition('NULL <> a')), '(is-not-null row:a)')
  assert.equal(shape(parseCondition('a == 1 OR a <> 2')), '(or (= row:a 1) (!= row:a 2))')
})

test('aliases resolve to the canonical functions', () => {
  assert.equal(shape(parseCondition("status_changed_to('x')")), '(CHANGED_TO row:status "x")')
  assert.equal(shape(parseCondition('field_changed(a.b)')), '(CHANGED row:a.b)')
  assert.equal(shape(parseCondition('is_new() OR Is_Deleted()')), '(or (IS_NEW) (IS_DELETED))')
})

test('field prefixes choose the image; event.<name> reads the event', () => {
  const e = parseCondition('after.a = new.b.c AND before.d = old.e AND event.tenant_id = `weird col`.x')
  assert.equal(
    shape(e),
    '(and (and (= after:a after:b.c) (= before:d before:e)) (= event:tenant_id row:weird col.x))',
  )
})

test('numbers keep their exact digits when a double cannot', () => {
  const e = parseCondition('a IN (9007199254740993, 12.5000000000, 100, -0.5)')
  assert.ok(e.kind === 'in')
  const [big, scaled, plain, negative] = e.list.map((l) => l.value)
  assert.ok(big instanceof ExactNumber && big.source === '9007199254740993')
  assert.ok(scaled instanceof ExactNumber && scaled.source === '12.5000000000')
  assert.equal(plain, 100)
  assert.equal(negative, -0.5)
})

test('referencedFields lists row columns read, without bare event-field fallbacks', () => {
  const condition =
    "CHANGED_TO(status, 'x') AND (total > 1 OR customer.tier = 'gold') AND tenant_id = 'a' " +
    "AND before.note IS NULL AND after.tenant_id = 'b' AND event.actor_id = 'c' AND status_changed_to('y')"
  assert.deepEqual(referencedFields(condition), ['customer', 'note', 'status', 'tenant_id', 'total'])
  assert.deepEqual(referencedFields(parseCondition('IS_NEW() AND true')), [])
})

test('explain shows each sub-expression, its value and what short-circuit skipped', () => {
  const c = compileCondition(`CHANGED_TO(status, 'shipped') AND (total > 100 OR customer.tier == "gold")`)
  const tree = c.explain(shipped)
  assert.equal(tree.value, true)
  assert.equal(tree.text, c.source)
  const [call, group] = tree.children
  assert.deepEqual(
    call?.children.map((n) => [n.text, n.value]),
    [
      ['before.status', 'pending'],
      ['after.status', 'shipped'],
    ],
  )
  assert.equal(group?.text, '(total > 100 OR customer.tier == "gold")')
  const [total, tier] = group?.children ?? []
  assert.deepEqual(
    total?.children.map((n) => [n.text, n.value]),
    [
      ['total', 150],
      ['100', 100],
    ],
  )
  assert.equal(tier?.skipped, true)
  assert.equal(tier?.value, undefined)
})

test('explain reports unknown as null and evaluation errors per node, without calling onError', () => {
  const errors: AppError[] = []
  const c = compileCondition('missing = 1 OR customer > 5', { onError: (err) => errors.push(err) })
  const tree = c.explain(shipped)
  assert.equal(tree.children[0]?.value, null)
  assert.match(
    tree.children[1]?.error ?? '',
    /^OB004: cannot compare object with number using '>' in customer > 5/,
  )
  assert.match(tree.error ?? '', /^OB004/)
  assert.deepEqual(errors, [])
})

test('an evaluation error calls onError with OB004 and the condition is false', () => {
  const errors: AppError[] = []
  const c = compileCondition('status > 5', { onError: (err) => errors.push(err) })
  assert.equal(c.test(shipped), false)
  assert.equal(errors.length, 1)
  assert.equal(errors[0]?.code, 'OB004')
  assert.match(errors[0]?.message ?? '', /cannot compare string with number using '>' in status > 5/)
})

test('test() never throws: not without onError, not when onError throws, not on a malformed event', () => {
  assert.equal(compileCondition('status > 5').test(shipped), false)
  const throwing = compileCondition('status > 5', {
    onError: () => {
      throw new Error('sink down')
    },
  })
  assert.equal(throwing.test(shipped), false)
  const errors: AppError[] = []
  const c = compileCondition('CHANGED(status)', { onError: (err) => errors.push(err) })
  const malformed = { ...changeEvent('UPDATE', { before: '{}', after: '{}' }), changed: undefined }
  assert.equal(c.test(malformed as never), false)
  assert.equal(errors[0]?.code, 'OB004')
})

test('a compiled condition keeps its source and is reusable across events', () => {
  const c = compileCondition('IS_NEW()')
  assert.equal(c.source, 'IS_NEW()')
  assert.equal(c.test(shipped), false)
  assert.equal(c.test(changeEvent('INSERT', { after: '{}' })), true)
})
