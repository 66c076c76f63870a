import assert from 'node:assert/strict'
import { test } from 'node:test'
import { fittedTable, truncate } from '../../src/cli/commands/table.ts'

test('a table wider than 120 columns is fitted: long cells cut with …, kept columns whole', () => {
  const id = 'ea0fe58a-3dfb-48a8-868e-ecacb7977345'
  const out = fittedTable(
    ['id', 'observer', 'destination'],
    [[id, 'o'.repeat(80), `https://${'x'.repeat(150)}`]],
    {
      keep: [0],
    },
  )
  const lines = out.split('\n')
  assert.deepEqual(
    lines.filter((l) => l.length > 120),
    [],
  )
  assert.ok(lines.some((l) => l.includes(id)))
  assert.match(out, /https:\/\/x+…/)
  assert.equal(truncate('abcdef', 4), 'abc…')
  assert.equal(truncate('abc', 4), 'abc')
})
