import { type FilterImplOptions, Liquid } from 'liquidjs'

type FilterHandler = Extract<FilterImplOptions, (...args: never[]) => unknown>

/**
 * The most items an array may have as a filter's input or argument. Liquid's render limit is
 * checked between template nodes, never inside one filter call, and a `sort` or `where` over
 * a 2 M-item row array runs for seconds; 10 000 items keep one call to tens of milliseconds.
 */
export const maxFilterItems = 10_000

/** Filters that read one item or a length, in constant time whatever the array's size. */
const constantTime = new Set(['size', 'first', 'last', 'default'])

// A plain Error, as Liquid's own limits throw: the render wraps it into one OB008 TemplateError.
function refuseLarge(filter: string, value: unknown): void {
  if (Array.isArray(value) && value.length > maxFilterItems) {
    throw new Error(
      `filter "${filter}" was given an array of ${value.length} items; filters take at most ${maxFilterItems}`,
    )
  }
}

function bounded(name: string, impl: FilterImplOptions): FilterImplOptions {
  if (constantTime.has(name)) return impl
  const handler: FilterHandler = typeof impl === 'function' ? impl : impl.handler
  const guarded: FilterHandler = function (this: ThisParameterType<FilterHandler>, value, ...args) {
    // Chained filters run inside one node, so the render limit is checked before each of them.
    this.context.renderLimit.check(performance.now())
    refuseLarge(name, value)
    for (const arg of args) refuseLarge(name, arg)
    return handler.call(this, value, ...args)
  }
  return typeof impl === 'function' ? guarded : { ...impl, handler: guarded }
}

/**
 * Liquid whose every filter, built in or registered later, refuses arrays over
 * `maxFilterItems` and stops once the render limit has passed (OB008), so no single call can
 * hold the event loop for long.
 */
export class BoundedLiquid extends Liquid {
  override registerFilter(name: string, filter: FilterImplOptions): void {
    super.registerFilter(name, bounded(name, filter))
  }
}
