import { readFileSync } from 'node:fs'
import { sendJson } from './http.ts'
import type { RouteContext } from './types.ts'

/** The OpenAPI 3.1 description of this server (openapi.json at the package root). */
export const openApiDocument: Record<string, unknown> = JSON.parse(
  readFileSync(new URL('../../openapi.json', import.meta.url), 'utf8'),
)

export function serveOpenApi({ res }: RouteContext): void {
  sendJson(res, 200, openApiDocument)
}
