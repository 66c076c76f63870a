import { coerceError, TemplateError } from '../errors/errors.ts'
import { parseExact } from '../json/exact.ts'
import type { ActionConfig } from '../observers/types.ts'
import { renderJson, renderString } from '../templates/render.ts'
import { missingEnv } from './env.ts'
import { applyElastic, type SearchOperation } from './search-elastic.ts'
import { type SearchProvider, searchEndpoint, searchProvider } from './search-endpoint.ts'
import { applyMeili } from './search-meili.ts'
import type { ActionContext, ActionType } from './types.ts'

export interface SearchAction extends ActionConfig {
  type: 'search'
  provider?: SearchProvider
  index: string
  id_template?: string
  operation?: 'index' | 'delete'
  document_template?: string | Record<string, unknown> | unknown[]
  /** Meilisearch only: the index's primary key attribute. @defaultValue `id` */
  primary_key?: string
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && value.constructor === Object
}

/** The document to index: the rendered template, or the row (after, or before on DELETE). */
function renderDocument(action: SearchAction, ctx: ActionContext): Record<string, unknown> {
  const { event } = ctx.delivery
  const tpl = action.document_template
  let document: unknown
  if (tpl === undefined) document = event.event === 'DELETE' ? event.before : (event.after ?? event.before)
  else if (typeof tpl === 'string') document = parseRendered(renderString(tpl, ctx.scope))
  else document = renderJson(tpl, ctx.scope)
  if (!isPlainObject(document)) {
    const got = document === null ? 'null' : Array.isArray(document) ? 'an array' : typeof document
    throw new TemplateError(`document_template must produce a JSON object, got ${got}`)
  }
  return document
}

function parseRendered(text: string): unknown {
  try {
    return parseExact(text)
  } catch (err) {
    throw new TemplateError(`document_template did not render valid JSON: ${coerceError(err).message}`, {
      cause: err,
    })
  }
}

/** Meilisearch reads a document's id from inside it, so the rendered id fills a missing key. */
function withPrimaryKey(op: SearchOperation, primaryKey: string): SearchOperation & { primaryKey: string } {
  const { document } = op
  if (!document || document[primaryKey] !== undefined) return { ...op, primaryKey }
  return { ...op, primaryKey, document: { ...document, [primaryKey]: op.id } }
}

function renderRequired(source: string, ctx: ActionContext, what: string): string {
  const value = renderString(source, ctx.scope).trim()
  if (!value) throw new TemplateError(`${what} rendered an empty string`)
  return value
}

/** Index or delete one document in Elasticsearch, OpenSearch or Meilisearch over REST. */
export const search: ActionType<SearchAction> = {
  type: 'search',
  defaultTimeoutMs: 10_000,
  missingTransport: (_action, config) => missingEnv(config, ['SEARCH_URL']),
  templates: (action) => [action.index, action.id_template, action.document_template],
  destination: () => 'env:SEARCH_URL',
  async execute(action, ctx) {
    const provider = searchProvider(action.provider, ctx.config)
    const { headers, ...rest } = searchEndpoint(provider, ctx.config)
    // X-Opaque-Id is Elasticsearch's and OpenSearch's request label (tasks, slow logs, deprecation logs).
    const endpoint = { ...rest, headers: { ...headers, 'x-opaque-id': ctx.delivery.delivery_id } }
    const operation = action.operation ?? (ctx.delivery.event.event === 'DELETE' ? 'delete' : 'index')
    const index = renderRequired(action.index, ctx, 'index')
    const id =
      action.id_template === undefined
        ? ctx.delivery.event.entity_id
        : renderRequired(action.id_template, ctx, 'id_template')
    const document = operation === 'index' ? renderDocument(action, ctx) : undefined
    const op = { operation, index, id, document, signal: ctx.signal }
    const out =
      provider === 'meilisearch'
        ? await applyMeili(endpoint, withPrimaryKey(op, action.primary_key ?? 'id'))
        : await applyElastic(endpoint, op)
    return { status: out.status, detail: { operation, index, id, ...out.detail } }
  },
}
