import type { Template } from 'liquidjs'
import { coerceError, TemplateError } from '../errors/errors.ts'
import type { Delivery } from '../event/delivery.ts'
import { registerFilters } from './filters.ts'
import { BoundedLiquid } from './limits.ts'

/**
 * Liquid with no file system (include/render find nothing), own properties only (no prototype
 * chains), and limits on render time, memory and filter inputs so a runaway loop or a huge row
 * array fails the job, not the worker (docs/observers.md, Template limits).
 */
const liquid = new BoundedLiquid({
  templates: {},
  ownPropertyOnly: true,
  strictFilters: true,
  renderLimit: 1000,
  memoryLimit: 64 * 1024 * 1024,
  parseLimit: 1024 * 1024,
})
registerFilters(liquid)

const parsed = new Map<string, Template[]>()
const singleExpression = /^\s*\{\{-?\s*([^{}]+?)\s*-?\}\}\s*$/

function parse(source: string): Template[] {
  let tpl = parsed.get(source)
  if (!tpl) {
    tpl = liquid.parse(source)
    parsed.set(source, tpl)
  }
  return tpl
}

/** Throws TemplateError (OB008) naming the template when it does not parse. */
export function checkTemplate(source: string): void {
  try {
    parse(source)
  } catch (err) {
    throw new TemplateError(`template does not parse: ${coerceError(err).message}`, { cause: err })
  }
}

/** Checks every string leaf of a JSON template. */
export function checkJsonTemplate(template: unknown): void {
  walk(template, (s) => {
    checkTemplate(s)
    return s
  })
}

/**
 * What templates see: the event's fields, the row's columns at top level (after, or before for
 * DELETE; a column wins a name clash, as in conditions), and observer, delivery_id, attempt.
 */
export function templateScope(delivery: Delivery, attempt: number): Record<string, unknown> {
  const { event } = delivery
  return {
    ...event,
    ...(event.after ?? event.before ?? {}),
    observer: delivery.observer,
    delivery_id: delivery.delivery_id,
    attempt,
  }
}

export function renderString(source: string, scope: object): string {
  try {
    return String(liquid.renderSync(parse(source), scope))
  } catch (err) {
    throw new TemplateError(`template failed to render: ${coerceError(err).message}`, { cause: err })
  }
}

/**
 * Renders a JSON template: every string leaf is a Liquid template, and a leaf that is exactly
 * one `{{ expression }}` keeps the expression's type (number, boolean, object, null).
 */
export function renderJson(template: unknown, scope: object): unknown {
  return walk(template, (s) => {
    const m = singleExpression.exec(s)
    if (!m?.[1]) return renderString(s, scope)
    try {
      return liquid.evalValueSync(m[1], scope) ?? null
    } catch (err) {
      throw new TemplateError(`template failed to render: ${coerceError(err).message}`, { cause: err })
    }
  })
}

function walk(value: unknown, leaf: (s: string) => unknown): unknown {
  if (typeof value === 'string') return leaf(value)
  if (Array.isArray(value)) return value.map((v) => walk(v, leaf))
  if (value && typeof value === 'object' && value.constructor === Object) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, leaf)]))
  }
  return value
}
