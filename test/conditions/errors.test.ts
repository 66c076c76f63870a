import assert from 'node:assert/strict'
import { test } from 'node:test'
import { compileCondition, parseCondition } from '../../src/conditions/index.ts'
import { ConditionSyntaxError } from '../../src/errors/errors.ts'

/** [condition, 1-based column of the offending token, text the message must contain]. */
const cases: readonly (readonly [string, number, string])[] = [
  ["status = 'shipped", 10, "unterminated string: expected a closing '"],
  ['status = "shipped', 10, 'unterminated string: expected a closing "'],
  ['total >> 5', 8, "expected a value after '>', found '>'"],
  ['total > ', 9, "expected a value after '>', found end of condition"],
  [
    'CHANGED_TO(status)',
    18,
    "CHANGED_TO(field, value) takes 2 arguments: expected ',' and a value, found ')'",
  ],
  ['status_changed_to()', 19, 'expected a literal value'],
  ["CHANGED(status, 'x')", 15, "CHANGED(field) takes 1 argument: expected ')', found ','"],
  ['IS_NEW(x)', 8, "IS_NEW() takes no arguments: expected ')', found 'x'"],
  ['CHANGED()', 9, "CHANGED(field) takes 1 argument: expected a field name, found ')'"],
  ['CHANGD(status)', 1, "unknown function 'CHANGD'; did you mean CHANGED?"],
  ['has_feild(x)', 1, 'did you mean HAS_FIELD?'],
  ["statuschangedto('x')", 1, 'did you mean status_changed_to?'],
  ["status = 'a' extra", 14, "expected AND, OR or end of condition, found 'extra'"],
  ["status = 'a' )", 14, "unmatched ')'"],
  ['a = 1 ADN b = 2', 7, "found 'ADN'; did you mean AND?"],
  ['', 1, 'empty condition'],
  ['   ', 1, 'empty condition'],
  ['a < b < c', 7, "found '<': comparisons cannot be chained"],
  ['(a = 1) = true', 9, 'comparisons cannot be chained or applied to a parenthesized condition'],
  ['(a = 1', 7, "expected ')' to close the '(' at column 1, found end of condition"],
  [
    'a = 1 AND',
    10,
    "expected a condition (a field, value or function call, NOT, or '('), found end of condition",
  ],
  ['AND a = 1', 1, 'found keyword AND'],
  ['a IN 1', 6, "expected '(' after IN"],
  ['a IN (1, 2', 11, "expected ',' or ')' in the IN list, found end of condition"],
  ['a IN ()', 7, 'expected a literal value'],
  ['a IN (b)', 7, "IN lists hold literal values only, found field 'b'"],
  ['a IS 5', 6, 'expected NULL after IS, found number 5'],
  ['a IS NOT 5', 10, 'expected NULL after IS NOT'],
  ['a > null', 3, "null cannot be ordered with '>': use IS NULL or IS NOT NULL"],
  ['a <= TRUE', 3, "booleans cannot be ordered with '<=': use = or !="],
  ['5', 2, 'expected a comparison (=, !=, <, <=, >, >=, IN, IS NULL) after 5, found end of condition'],
  ["'x' AND y", 5, "after 'x', found keyword AND"],
  [String.raw`a = 'x\q'`, 7, String.raw`unknown escape '\q' in string`],
  ['a & b', 3, "unexpected '&': did you mean '&&'?"],
  ['a | b', 3, "did you mean '||'?"],
  ['a = 5abc', 5, "invalid number '5abc'"],
  ['a = 1.2.3', 5, "invalid number '1.2.3'"],
  ['a # b', 3, "unexpected character '#'"],
  ['event.foo = 1', 7, "unknown event field 'foo' (event fields: id, seq, event, entity"],
  ["event.tenant = 'x'", 7, 'did you mean tenant_id?'],
  ['event.tenant_id.x = 1', 17, "event.tenant_id has no fields inside it, found 'x'"],
  [
    'CHANGED(after.status)',
    9,
    'CHANGED compares before and after itself: write CHANGED(status), not after.status',
  ],
  [
    'CHANGED_TO(status, other)',
    20,
    "expected a literal value ('string', number, true, false or null), found field 'other'",
  ],
  ['HAS_FIELD(event.id)', 11, 'HAS_FIELD(field) takes a row field, not an event field'],
  ['HAS_FIELD(after)', 11, 'HAS_FIELD(field) needs a field name, such as after.status'],
  ['a. = 1', 4, "expected a field name after '.', found '='"],
  ['` = 1', 1, 'unterminated field name: expected a closing `'],
  ['`` = 1', 1, 'empty field name'],
  [`${'('.repeat(70)}a${')'.repeat(70)}`, 65, 'condition nests too deeply'],
  [`${'NOT '.repeat(70)}a`, 257, 'condition nests too deeply'],
]

for (const [condition, column, message] of cases) {
  test(`rejects ${JSON.stringify(condition)} at column ${column}`, () => {
    assert.throws(
      () => compileCondition(condition),
      (err: unknown) => {
        assert.ok(err instanceof ConditionSyntaxError)
        assert.equal(err.code, 'OB003')
        assert.equal(err.column, column)
        assert.equal(err.offset, column - 1)
        assert.ok(err.message.includes(message), `message was: ${err.message}`)
        return true
      },
    )
  })
}

test('the message shows the condition with a caret under the offending token', () => {
  assert.throws(() => parseCondition('total >> 5'), {
    code: 'OB003',
    message: "expected a value after '>', found '>' at column 8\n  total >> 5\n         ^",
  })
})

test('an unknown function with no close name gets no suggestion', () => {
  assert.throws(
    () => parseCondition('frobnicate(x)'),
    (err: Error) => !err.message.includes('did you mean'),
  )
})

test('keywords, function names and prefixes are case-insensitive; field names are not', () => {
  assert.doesNotThrow(() =>
    parseCondition("NoT a Is NuLl aNd changed_TO(b, TrUe) Or OLD.c iN ('x') and Is_New()"),
  )
})
