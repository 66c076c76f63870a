import { readFileSync } from 'node:fs'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { didYouMean } from '../conditions/suggest.ts'

/** The published JSON Schema of observer files (observer.schema.json at the package root). */
export const observerSchema: object = JSON.parse(
  readFileSync(new URL('../../observer.schema.json', import.meta.url), 'utf8'),
)

// Compiled on first use, not on import: compiling takes over a tenth of a second of CPU, which a
// command that reads no observer file (--help, dlq, …) need not pay at start-up.
let validator: ValidateFunction | undefined
function fileValidator(): ValidateFunction {
  validator ??= new Ajv({
    allErrors: true,
    discriminator: true,
    strict: true,
    strictRequired: false,
    allowUnionTypes: true,
    // Errors carry the offending value, for "did you mean" on an unknown action type.
    verbose: true,
    // Without the optimiser's pass over the generated code the compile takes ~135 ms of CPU
    // instead of ~200, in every process that loads observers; the validator only ever checks a
    // handful of files, so a leaner validating function would save less than that.
    code: { optimize: false },
  }).compile(observerSchema)
  return validator
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
