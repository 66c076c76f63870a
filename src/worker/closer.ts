/**
 * What start-up has opened so far. `opened` registers how to close each thing as it opens, so a
 * start that fails part way closes what it opened, last first.
 */
export interface Closer {
  opened<T>(thing: T, close: (t: T) => Promise<unknown> | unknown): T
  closeAll(): Promise<void>
}

export function createCloser(): Closer {
  const undo: Array<() => Promise<unknown>> = []
  return {
    opened(thing, close) {
      undo.push(async () => close(thing))
      return thing
    },
    async closeAll() {
      for (const close of undo.reverse()) await close().catch(() => {})
    },
  }
}
