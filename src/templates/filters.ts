import type { Liquid } from 'liquidjs'
import { TemplateError } from '../errors/errors.ts'

/**
 * A value as exactly one URL path segment: everything outside RFC 3986's unreserved characters
 * is percent-encoded, and `.`, `..` and the empty string are refused. URL parsers remove dot
 * segments (in any percent-encoded spelling), so `/items/..` would address `/`: a row value must
 * never be able to move a request up the path, e.g. to a DELETE of a whole index.
 */
export function pathSegment(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value)
  if (text === '' || text === '.' || text === '..') {
    throw new TemplateError(`"${text}" cannot be a URL path segment (empty, "." and ".." are refused)`)
  }
  try {
    return encodeURIComponent(text).replace(
      /[!'()*]/g,
      (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
    )
  } catch (err) {
    throw new TemplateError('a URL path segment must be valid Unicode text', { cause: err })
  }
}

/** Filters the product adds to Liquid's standard set. */
export function registerFilters(liquid: Liquid): void {
  liquid.registerFilter('path_segment', (value: unknown) => pathSegment(value))
}
