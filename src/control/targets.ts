import type { Observer } from '../observers/types.ts'

/** A pause target: an observer by name, or one action of it as `name#index`. */
export interface PauseTarget {
  observer: string
  actionIndex: number | undefined
}

/** Parses `name` or `name#index`; undefined when it is neither. */
export function parseTarget(text: string): PauseTarget | undefined {
  const m = /^([^#]+)(?:#(\d+))?$/.exec(text)
  if (!m?.[1]) return undefined
  return { observer: m[1], actionIndex: m[2] === undefined ? undefined : Number(m[2]) }
}

/** True when the target names a running observer, and an action it has. */
export function targetExists(t: PauseTarget, observers: readonly Observer[]): boolean {
  const o = observers.find((x) => x.name === t.observer)
  return o !== undefined && (t.actionIndex === undefined || t.actionIndex < o.actions.length)
}
