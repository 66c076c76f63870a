import { constants } from 'node:fs'
import { open, readdir } from 'node:fs/promises'
import path from 'node:path'
import { type ParseError, parseTree, printParseErrorCode } from 'jsonc-parser'
import { actionTypes } from '../actions/registry.ts'
import { compileCondition } from '../conditions/index.ts'
import {
  type AppError,
  ConditionSyntaxError,
  coerceError,
  ErrorCode,
  ObserverFileError,
} from '../errors/errors.ts'
import type { EventKind } from '../event/event.ts'
import { checkJsonTemplate, checkTemplate } from '../templates/render.ts'
import { entityProblem, normaliseEntity } from './entity.ts'
import { checkSchema } from './schema.ts'
import {
  type ActionConfig,
  defaultRetry,
  type FailurePolicy,
  type Observer,
  ownSource,
  type RetryPolicy,
} from './types.ts'

export interface LoadResult {
  observers: Observer[]
  problems: ObserverFileError[]
}

export interface LoadOptions {
  /** Told when a condition fails to evaluate (OB004); the condition then counts as false. */
  onConditionError?: (observer: string, err: AppError) => void
}

const eventAliases: Record<string, EventKind> = {
  insert: 'INSERT',
  created: 'INSERT',
  update: 'UPDATE',
  updated: 'UPDATE',
  delete: 'DELETE',
  deleted: 'DELETE',
}

export { normaliseEntity } from './entity.ts'

/**
 * Loads every `*.json` file of `dir`. A file with any problem is left out whole and all its
 * problems are reported; the other files load.
 */
export async function loadObservers(dir: string, opts: LoadOptions = {}): Promise<LoadResult> {
  let files: string[]
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort()
  } catch (err) {
    const e = new ObserverFileError(
      ErrorCode.InvalidConfig,
      dir,
      '',
      `cannot read observers directory: ${coerceError(err).message}`,
    )
    return { observers: [], problems: [e] }
  }
  const observers: Observer[] = []
  const problems: ObserverFileError[] = []
  const names = new Map<string, string>()
  for (const file of files) {
    const full = path.join(dir, file)
    const text = await readObserverFile(full)
    if (typeof text !== 'string') {
      problems.push(text)
      continue
    }
    const result = parseObserver(full, text, opts)
    if ('problems' in result) {
      problems.push(...result.problems)
      continue
    }
    if (!result.observer) continue
    const other = names.get(result.observer.name)
    if (other) {
      problems.push(
        new ObserverFileError(
          ErrorCode.InvalidConfig,
          full,
          '/name',
          `duplicate observer name "${result.observer.name}" (also in ${other})`,
        ),
      )
      continue
    }
    names.set(result.observer.name, full)
    observers.push(result.observer)
  }
  return { observers, problems }
}

/**
 * The text of one directory entry, or why it has none. Opened without blocking and checked
 * before reading: a FIFO named `*.json` would otherwise hang the loader until someone writes to
 * it, and a directory or a dangling link must be a problem of that entry, not of the whole load.
 */
async function readObserverFile(file: string): Promise<string | ObserverFileError> {
  const problem = (message: string) => new ObserverFileError(ErrorCode.InvalidConfig, file, '', message)
  let handle: Awaited<ReturnType<typeof open>> | undefined
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK)
    const stats = await handle.stat()
    if (!stats.isFile()) {
      const kind = stats.isDirectory() ? 'a directory' : stats.isFIFO() ? 'a FIFO' : 'a special file'
      return problem(`not a regular file (${kind}); observer files must be regular files`)
    }
    return await handle.readFile('utf8')
  } catch (err) {
    return problem(`cannot read: ${coerceError(err).message}`)
  } finally {
    await handle?.close()
  }
}

/** Parses one observer file's text; `observer` is undefined for a valid but disabled file. */
export function parseObserver(
  file: string,
  text: string,
  opts: LoadOptions = {},
): { observer: Observer | undefined } | { problems: ObserverFileError[] } {
  // Some Windows editors start UTF-8 files with a byte-order mark, which JSON does not allow.
  const json = text.startsWith('\uFEFF') ? text.slice(1) : text
  let data: unknown
  try {
    data = JSON.parse(json)
  } catch (err) {
    return {
      problems: [
        new ObserverFileError(
          ErrorCode.InvalidConfig,
          file,
          '',
          `invalid JSON: ${locate(json, coerceError(err).message)}`,
        ),
      ],
    }
  }
  const schemaProblems = checkSchema(data)
  if (schemaProblems.length > 0) {
    const problems = schemaProblems.map(
      (p) => new ObserverFileError(schemaCode(p.path, p.keyword), file, p.path, p.message),
    )
    // The condition is checked too, so one run lists every problem of the file.
    const partial: Partial<RawObserver> = data && typeof data === 'object' && !Array.isArray(data) ? data : {}
    if (typeof partial.condition === 'string' && !schemaProblems.some((p) => p.path === '/condition')) {
      compile(file, { ...partial, name: String(partial.name) } as RawObserver, problems, opts)
    }
    return { problems }
  }
  const raw = data as RawObserver
  const problems = [...checkActions(file, raw.actions)]
  // Other sources name entities their own way (a FraiseQL object_type, a MySQL db.table).
  const entityError = (raw.source ?? ownSource) === ownSource ? entityProblem(raw.entity) : undefined
  if (entityError) problems.push(new ObserverFileError(ErrorCode.InvalidConfig, file, '/entity', entityError))
  const condition = compile(file, raw, problems, opts)
  if (problems.length > 0) return { problems }
  if (raw.enabled === false) return { observer: undefined }
  return { observer: toObserver(file, raw, condition) }
}

interface RawObserver {
  name: string
  source?: string
  entity: string
  events: string[]
  columns?: string[]
  condition?: string
  actions: ActionConfig[]
  retry?: Partial<RetryPolicy>
  on_failure?: FailurePolicy
  ordering?: 'none' | 'entity'
  enabled?: boolean
  noop_updates?: boolean
  tenant_column?: string
}

function toObserver(file: string, raw: RawObserver, condition: Observer['condition']): Observer {
  const source = raw.source ?? ownSource
  return {
    name: raw.name,
    file,
    source,
    // Other sources name entities their own way (a FraiseQL object_type, a MySQL db.table).
    entity: source === ownSource ? normaliseEntity(raw.entity) : raw.entity,
    events: new Set(raw.events.map((e) => eventAliases[e.toLowerCase()] as EventKind)),
    columns: raw.columns,
    condition,
    actions: raw.actions,
    retry: { ...defaultRetry, ...raw.retry },
    onFailure: raw.on_failure ?? 'dlq',
    ordering: raw.ordering ?? 'none',
    noopUpdates: raw.noop_updates ?? false,
    tenantColumn: raw.tenant_column,
  }
}

function compile(file: string, raw: RawObserver, problems: ObserverFileError[], opts: LoadOptions) {
  if (raw.condition === undefined) return undefined
  try {
    const onError = opts.onConditionError
    return compileCondition(raw.condition, onError ? { onError: (err) => onError(raw.name, err) } : {})
  } catch (err) {
    const e = coerceError(err)
    const code = err instanceof ConditionSyntaxError ? err.code : ErrorCode.InvalidCondition
    problems.push(new ObserverFileError(code, file, '/condition', e.message, { cause: err }))
    return undefined
  }
}

function checkActions(file: string, actions: ActionConfig[]): ObserverFileError[] {
  const problems: ObserverFileError[] = []
  actions.forEach((action, i) => {
    const type = actionTypes.get(action.type)
    if (!type) {
      problems.push(
        new ObserverFileError(
          ErrorCode.UnsupportedActionType,
          file,
          `/actions/${i}/type`,
          `action type "${action.type}" is not supported by this build`,
        ),
      )
      return
    }
    const rateKey = action.rate_limit?.key
    for (const tpl of rateKey === undefined ? type.templates(action) : [...type.templates(action), rateKey]) {
      try {
        if (typeof tpl === 'string') checkTemplate(tpl)
        else if (tpl !== undefined) checkJsonTemplate(tpl)
      } catch (err) {
        problems.push(
          new ObserverFileError(
            ErrorCode.TemplateRenderingFailed,
            file,
            `/actions/${i}`,
            coerceError(err).message,
          ),
        )
      }
    }
  })
  return problems
}

function schemaCode(pointer: string, keyword: string) {
  if (keyword === 'discriminator') return ErrorCode.UnsupportedActionType
  return pointer.startsWith('/actions') ? ErrorCode.InvalidActionConfig : ErrorCode.InvalidConfig
}

/** Adds the line and column of the first syntax error, which JSON.parse does not always give. */
function locate(text: string, message: string): string {
  const errors: ParseError[] = []
  parseTree(text, errors, { disallowComments: true, allowTrailingComma: false })
  const first = errors[0]
  if (!first) return message
  const before = text.slice(0, first.offset)
  const line = before.split('\n').length
  const column = first.offset - before.lastIndexOf('\n')
  return `${printParseErrorCode(first.error)} at line ${line}, column ${column}`
}
