import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

/**
 * Loads a client library on first call: a CLI command that never delivers (validate, dlq list,
 * --help) never pays the hundreds of milliseconds these libraries take to load. The libraries
 * are CommonJS, so the instance is the one an `import` elsewhere would see.
 */
export function lazyModule<T>(id: string): () => T {
  let loaded: T | undefined
  return () => {
    loaded ??= require(id) as T
    return loaded
  }
}
