import { stringifyExact } from '../json/exact.ts'
import { assertOk, sendHttp } from './http.ts'
import type { SearchEndpoint } from './search-endpoint.ts'
import { searchUrl } from './search-endpoint.ts'

export interface SearchOperation {
  operation: 'index' | 'delete'
  index: string
  id: string
  document: Record<string, unknown> | undefined
  signal: AbortSignal
}

export interface SearchOutcome {
  status: number
  detail: Record<string, unknown>
}

/** Elasticsearch and OpenSearch share the document API: PUT or DELETE `/{index}/_doc/{id}`. */
export async function applyElastic(endpoint: SearchEndpoint, op: SearchOperation): Promise<SearchOutcome> {
  const url = searchUrl(endpoint, [op.index, '_doc', op.id])
  const what = `${endpoint.provider} ${op.operation} ${op.index}/${op.id}`
  if (op.operation === 'delete') {
    const res = await sendHttp({ url, method: 'DELETE', headers: endpoint.headers, signal: op.signal })
    // The document (or its whole index) is already gone, which is what a delete wants.
    if (res.status === 404) return { status: 404, detail: { result: 'not_found' } }
    assertOk(res, what)
    return { status: res.status, detail: { result: resultOf(res.body) } }
  }
  const res = await sendHttp({
    url,
    method: 'PUT',
    headers: { ...endpoint.headers, 'content-type': 'application/json' },
    body: stringifyExact(op.document),
    signal: op.signal,
  })
  assertOk(res, what)
  return { status: res.status, detail: { result: resultOf(res.body) } }
}

function resultOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { result?: unknown }
    return typeof parsed.result === 'string' ? parsed.result : undefined
  } catch {
    return undefined
  }
}
