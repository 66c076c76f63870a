import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { ExactNumber, parseExact, stringifyExact } from '../../src/json/exact.ts'

/** The definition parseExact must match: every number whose digits a double would change is an ExactNumber. */
function reference(text: string): unknown {
  return JSON.parse(text, (_key, value, context: { source?: string }) =>
    typeof value === 'number' && context.source !== undefined && String(value) !== context.source
      ? new ExactNumber(context.source)
      : value,
  )
}

/** Number literals of every shape JSON allows, weighted towards the ones a double cannot print back. */
const numberText = fc
  .oneof(
    fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
    fc.bigInt({ min: -(10n ** 22n), max: 10n ** 22n }).map(String),
    fc
      .tuple(fc.bigInt({ min: -(10n ** 18n), max: 10n ** 18n }), fc.nat(99_999), fc.nat(4))
      .map(([i, f, zeros]) => `${i}.${f}${'0'.repeat(zeros)}`),
    fc.tuple(fc.integer({ min: 1, max: 9 }), fc.nat(10)).map(([d, zeros]) => `0.${'0'.repeat(zeros)}${d}`),
    fc.constantFrom(
      '-0',
      '0',
      '-0.0',
      '1e5',
      '1E+2',
      '2.5e-3',
      '1.0',
      '0.000001',
      '0.0000001',
      '1234567890123456',
    ),
  )
  .filter((t) => !t.includes('Infinity') && !t.includes('NaN'))

test('parseExact matches the reviver definition on documents of any numbers and strings', () => {
  const doc = fc
    .array(fc.tuple(fc.string(), numberText), { maxLength: 8 })
    .map(
      (pairs) =>
        `{${pairs.map(([s, n], i) => `"k${i}": [${n}, ${JSON.stringify(s)}], "n${i}":${n}`).join(', ')}}`,
    )
  fc.assert(
    fc.property(doc, (text) => {
      assert.deepEqual(parseExact(text), reference(text))
    }),
    { numRuns: 3000 },
  )
  fc.assert(
    fc.property(numberText, (text) => {
      assert.deepEqual(parseExact(text), reference(text))
    }),
  )
})

test('parseExact keeps the digits a double would lose, and plain numbers stay numbers', () => {
  const v = parseExact(
    '{"amount": 12.50, "id": 9007199254740993, "small": 0.0000001, "n": [0.25, 42]}',
  ) as Record<string, unknown>
  assert.ok(v.amount instanceof ExactNumber && v.amount.source === '12.50')
  assert.ok(v.id instanceof ExactNumber && v.id.source === '9007199254740993')
  assert.ok(v.small instanceof ExactNumber)
  assert.deepEqual(v.n, [0.25, 42])
  assert.deepEqual(parseExact('{"a": 1, "b": "12.50, 1e5"}'), { a: 1, b: '12.50, 1e5' })
})

// Each number as Postgres may print it: parsed and printed again, it must keep its digits.
const numbers = [
  '0',
  '-1',
  '12.5',
  '12.50',
  '79.1900000000000000',
  '-0',
  '-0.0',
  '1e21',
  '1.5E3',
  '0.000001',
  '0.0000001',
  '123456789012345',
  '1234567890123456',
  '9007199254740993',
  '12345678.12345678',
  '0.1',
  '100',
  '3.14159265358979',
  '3.141592653589793238',
]

test('every number keeps its exact digits through a parse and a print, on either path', () => {
  for (const n of numbers) {
    const text = `{"a": ${n}, "b": [${n}], "s": "x"}`
    assert.equal(stringifyExact(parseExact(text)), `{"a":${n},"b":[${n}],"s":"x"}`, n)
  }
})

test('numbers a double cannot print as written become ExactNumber; the others stay numbers', () => {
  assert.ok((parseExact('{"a": 12.50}') as { a: unknown }).a instanceof ExactNumber)
  assert.ok((parseExact('[9007199254740993]') as unknown[])[0] instanceof ExactNumber)
  assert.equal((parseExact('{"a": 12.5, "t": "2026-11-30T21:15:37.030339Z"}') as { a: unknown }).a, 12.5)
})
