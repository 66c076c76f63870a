import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ExactNumber, parseExact, stringifyExact } from '../../src/json/exact.ts'

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
