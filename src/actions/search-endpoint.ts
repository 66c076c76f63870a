import type { Config } from '../config/config.ts'
import { ActionError, ErrorCode } from '../errors/errors.ts'
import { pathSegment } from '../templates/filters.ts'
import { requireEnv } from './env.ts'
import { invalidUrl } from './http.ts'

export const searchProviders = ['elasticsearch', 'opensearch', 'meilisearch'] as const
export type SearchProvider = (typeof searchProviders)[number]

/** Where and how to reach the search engine; `headers` may hold a secret and is never logged. */
export interface SearchEndpoint {
  provider: SearchProvider
  /** Base URL without credentials, query or trailing slash. */
  base: string
  headers: Record<string, string>
}

export function searchProvider(configured: string | undefined, config: Config): SearchProvider {
  const name = (configured ?? config.env.SEARCH_PROVIDER ?? 'elasticsearch').toLowerCase()
  const provider = searchProviders.find((p) => p === name)
  if (provider) return provider
  throw new ActionError(`unknown search provider "${name}" (expected ${searchProviders.join(', ')})`, {
    retryable: false,
    code: ErrorCode.InvalidActionConfig,
  })
}

/**
 * Reads SEARCH_URL and the credentials at execution time. Precedence: SEARCH_API_KEY, then
 * SEARCH_USERNAME/SEARCH_PASSWORD, then credentials embedded in SEARCH_URL (moved to a header
 * so they never reach a request line or an error message).
 */
export function searchEndpoint(provider: SearchProvider, config: Config): SearchEndpoint {
  const raw = requireEnv(config, 'SEARCH_URL', 'search')
  if (!URL.canParse(raw)) throw invalidUrl(raw)
  const url = new URL(raw)
  if (!/^https?:$/.test(url.protocol)) throw invalidUrl(raw)
  const basic = basicCredentials(config, url)
  const headers: Record<string, string> = { 'user-agent': 'pg-observers' }
  const apiKey = config.env.SEARCH_API_KEY
  if (apiKey) headers.authorization = provider === 'meilisearch' ? `Bearer ${apiKey}` : `ApiKey ${apiKey}`
  else if (basic) headers.authorization = `Basic ${Buffer.from(basic).toString('base64')}`
  const base = `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`
  return { provider, base, headers }
}

function basicCredentials(config: Config, url: URL): string | undefined {
  const user = config.env.SEARCH_USERNAME
  if (user) return `${user}:${config.env.SEARCH_PASSWORD ?? ''}`
  if (!url.username) return undefined
  return `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
}

/**
 * Joins path segments onto the base URL, each one percent-encoded and never a dot segment: an
 * id `..` must fail the delivery (OB008), not turn a document DELETE into an index DELETE.
 */
export function searchUrl(
  endpoint: SearchEndpoint,
  segments: string[],
  query?: Record<string, string>,
): string {
  const path = segments.map((s) => `/${pathSegment(s)}`).join('')
  const qs = query ? `?${new URLSearchParams(query).toString()}` : ''
  return `${endpoint.base}${path}${qs}`
}
