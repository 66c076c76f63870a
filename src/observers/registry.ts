import { ErrorCode, type ObserverFileError } from '../errors/errors.ts'
import type { Logger } from '../log/log.ts'
import type { Observer } from './types.ts'
import { watchDir } from './watch-dir.ts'

/** A set of observers as one load found it; the running set is replaced whole. */
export interface LoadedObservers {
  readonly observers: readonly Observer[]
  readonly problems: readonly ObserverFileError[]
  readonly loadedAt: Date
}

export interface ReloadResult<S extends LoadedObservers> {
  applied: boolean
  /** The set running after the reload. */
  set: S
  problems: readonly ObserverFileError[]
}

/** Owns the running set of observers and how it is replaced. */
export interface ObserverRegistry<S extends LoadedObservers> {
  current(): S
  /** All or nothing: a new set with any problem is rejected and the running set stays. */
  reload(): Promise<ReloadResult<S>>
  /** The problems of the last reload when it was rejected; empty once a reload applies. */
  reloadProblems(): readonly ObserverFileError[]
  /** Stops watching the directory. */
  close(): void
}

export interface RegistryOptions<S extends LoadedObservers> {
  /** Loads a set; `strict` stops at the first file problem, before anything is watched. */
  load(strict: boolean): Promise<S>
  /** Told of every set that becomes the running one, the first included. */
  onApply(set: S): void
  /** The observer directory, reloaded on change when `watch` is set. */
  dir: string
  watch: boolean
  log: Logger
}

/** Serialises reloads (SIGHUP, API, directory changes) so two never interleave. */
function serialised<T>(fn: () => Promise<T>): () => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve()
  return () => {
    const run = tail.then(fn)
    tail = run.catch(() => {})
    return run
  }
}

/**
 * Loads the first set (problems and all: a start runs what is valid) and keeps it until a
 * reload brings a set without problems.
 */
export async function startObserverRegistry<S extends LoadedObservers>(
  o: RegistryOptions<S>,
): Promise<ObserverRegistry<S>> {
  let set = await o.load(false)
  let rejected: readonly ObserverFileError[] = []
  o.onApply(set)
  const reload = serialised(async (): Promise<ReloadResult<S>> => {
    const next = await o.load(true)
    if (next.problems.length > 0) {
      rejected = next.problems
      o.log.error(
        { code: ErrorCode.InvalidConfig, problems: next.problems.length },
        `${ErrorCode.InvalidConfig}: reload rejected: ${next.problems.length} problem(s) in ${o.dir}; keeping the ${set.observers.length} running observer(s)`,
      )
      return { applied: false, set, problems: next.problems }
    }
    set = next
    rejected = []
    o.onApply(next)
    return { applied: true, set: next, problems: [] }
  })
  const onDirChange = () => void reload().catch((err) => o.log.error({ err }, 'reload failed'))
  const watcher = o.watch ? watchDir(o.dir, onDirChange, o.log) : undefined
  return {
    current: () => set,
    reload,
    reloadProblems: () => rejected,
    close: () => watcher?.close(),
  }
}
