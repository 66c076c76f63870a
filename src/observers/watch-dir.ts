import { type FSWatcher, watch } from 'node:fs'
import { coerceError } from '../errors/errors.ts'
import type { Logger } from '../log/log.ts'

export interface DirWatcher {
  close(): void
}

/** Editors write a file in several steps (truncate, write, rename); one reload covers them all. */
export const reloadDebounceMs = 500

/**
 * Calls `onChange` once things settle after any `*.json` file in `dir` is created, changed,
 * renamed or deleted, or a mounted ConfigMap is updated. A directory that cannot be watched is
 * logged and otherwise ignored: SIGHUP and POST /api/observers/reload still reload.
 */
export function watchDir(
  dir: string,
  onChange: () => void,
  log: Logger,
  debounceMs = reloadDebounceMs,
): DirWatcher {
  let timer: NodeJS.Timeout | undefined
  let watcher: FSWatcher
  try {
    watcher = watch(dir, { persistent: false }, (_event, file) => {
      // `..data` and friends: a Kubernetes ConfigMap swaps a symlinked directory, not the files.
      if (file !== null && !file.endsWith('.json') && !file.startsWith('..')) return
      clearTimeout(timer)
      timer = setTimeout(onChange, debounceMs)
    })
  } catch (err) {
    log.warn({ dir, error: coerceError(err).message }, 'cannot watch the observers directory')
    return { close() {} }
  }
  watcher.on('error', (err) => {
    log.warn({ dir, error: coerceError(err).message }, 'stopped watching the observers directory')
    watcher.close()
  })
  log.info({ dir }, 'watching the observers directory for changes')
  return {
    close() {
      clearTimeout(timer)
      watcher.close()
    },
  }
}
