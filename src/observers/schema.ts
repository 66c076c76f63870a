import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { ErrorObject, Options, ValidateFunction } from 'ajv'
import { didYouMean } from '../conditions/suggest.ts'

/** The published JSON Schema of observer files (observer.schema.json at the package root). */
export const observerSchema: object = JSON.parse(
  readFileSync(new URL('../../observer.schema.json', import.meta.url), 'utf8'),
)

/** Names the schema a generated validator was compiled from; blind to the file's layout and line ends. */
export const observerSchemaHash = createHash('sha256').update(JSON.stringify(observerSchema)).digest('hex')

/** How the validator is compiled, here and by the generator of observer-validator.cjs. */
export const validatorOptions: Options = {
  allErrors: true,
  discriminator: true,
  strict: true,
  strictRequired: false,
  allowUnionTypes: true,
  // Errors carry the offending value, for "did you mean" on an unknown action type.
  verbose: true,
}

const require = createRequire(import.meta.url)

// Loaded on first use, not on import: a command that reads no observer file (--help, dlq, …)
// need not load it at start-up.
let validator: ValidateFunction | undefined
function fileValidator(): ValidateFunction {
  validator ??= loadValidator()
  return validator
}

/**
 * The validator generated from the schema (observer-validator.cjs, rewritten by
 * `UPDATE_VALIDATOR=1 npm test -- test/observers/validator.test.ts`): loading it takes ~45 ms of
 * CPU (~8 with NODE_COMPILE_CACHE) where loading ajv and compiling the schema took ~200, in every
 * process that reads observer files. A schema edited since is compiled instead, so a stale module
 * never decides what is valid.
 */
function loadValidator(): ValidateFunction {
  const generated = require('./observer-validator.cjs') as ValidateFunction & { schemaHash: string }
  if (generated.schemaHash === observerSchemaHash) return generated
  const { Ajv } = require('ajv') as typeof import('ajv')
  return new Ajv(validatorOptions).compile(observerSchema)
}

export interface SchemaProblem {
  path: string
  message: string
  keyword: string
}

/** Every schema violation of one parsed file, as JSON-pointer paths and readable messages. */
export function checkSchema(data: unknown): SchemaProblem[] {
  const validateFile = fileValidator()
  if (validateFile(data)) return []
  const problems = (validateFile.errors ?? []).filter(notNoise).map(describe)
  // The action type is checked twice (enum and discriminator); report it once.
  return problems.filter(
    (p, i) => problems.findIndex((q) => q.path === p.path && q.keyword === p.keyword) === i,
  )
}

// anyOf/oneOf wrappers repeat what their branches already said.
function notNoise(e: ErrorObject): boolean {
  return e.keyword !== 'anyOf' && e.keyword !== 'oneOf' && e.keyword !== 'if'
}

function describe(e: ErrorObject): SchemaProblem {
  const path = e.instancePath || '/'
  const p = e.params as Record<string, unknown>
  if (/^\/actions\/\d+\/type$/.test(path) && e.keyword === 'enum') {
    return {
      path,
      keyword: 'discriminator',
      message: `unknown action type "${String(e.data)}"${didYouMean(String(e.data), p.allowedValues as string[])} (expected one of ${(p.allowedValues as string[]).join(', ')})`,
    }
  }
  switch (e.keyword) {
    case 'additionalProperties':
      return { path, keyword: e.keyword, message: `unknown property "${String(p.additionalProperty)}"` }
    case 'required':
      return { path, keyword: e.keyword, message: `missing required property "${String(p.missingProperty)}"` }
    case 'enum':
      return {
        path,
        keyword: e.keyword,
        message: `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      }
    case 'not':
      if (path.endsWith('/rate_limit'))
        return { path, keyword: e.keyword, message: 'set per_second or per_minute, not both' }
      return { path, keyword: e.keyword, message: e.message ?? e.keyword }
    case 'discriminator':
      return { path: `${path}/type`, keyword: e.keyword, message: 'unknown action type' }
    default:
      return { path, keyword: e.keyword, message: e.message ?? e.keyword }
  }
}
