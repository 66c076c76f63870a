import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { test } from 'node:test'
import { Ajv } from 'ajv'
import standalone from 'ajv/dist/standalone/index.js'
import { observerSchema, observerSchemaHash, validatorOptions } from '../../src/observers/schema.ts'

/**
 * src/observers/observer-validator.cjs is ajv's standalone code for observer.schema.json, so no
 * process compiles the schema at start-up. A difference means the schema, the options or ajv
 * changed: regenerate with UPDATE_VALIDATOR=1 npm test -- test/observers/validator.test.ts.
 */
function generatedValidator(): string {
  const ajv = new Ajv({ ...validatorOptions, code: { source: true } })
  return [
    '// Generated from observer.schema.json by test/observers/validator.test.ts: do not edit.',
    // A CommonJS module whose export is also its own `default`, the name its types know it by.
    standalone.default(ajv, ajv.compile(observerSchema)),
    `module.exports.schemaHash = ${JSON.stringify(observerSchemaHash)};`,
    '',
  ].join('\n')
}

test('the generated observer validator matches observer.schema.json', async () => {
  const actual = generatedValidator()
  const file = new URL('../../src/observers/observer-validator.cjs', import.meta.url)
  if (process.env.UPDATE_VALIDATOR === '1') await writeFile(file, actual)
  assert.ok(
    actual === (await readFile(file, 'utf8')),
    'src/observers/observer-validator.cjs is stale: regenerate with UPDATE_VALIDATOR=1 npm test -- test/observers/validator.test.ts',
  )
})
