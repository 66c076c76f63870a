import type { Config, SourceConfig } from '../config/config.ts'
import type { Queryable } from '../db/pool.ts'
import { ErrorCode, ObserverFileError } from '../errors/errors.ts'
import type { Observer } from '../observers/types.ts'
import { changeLogSource } from './changelog.ts'
import { fraiseqlSource } from './fraiseql/source.ts'
import { sourceHealth } from './health.ts'
import { mysqlSource } from './mysql/source.ts'
import type { ChangeSource, SourceHealth } from './types.ts'

function createSource(s: SourceConfig, config: Config): ChangeSource {
  const common = { name: s.name, pollMs: s.pollMs, commitWindowMs: s.commitWindowMs }
  if (s.kind === 'fraiseql') return fraiseqlSource({ ...common, table: s.table })
  return mysqlSource({ ...common, url: s.url ?? '', logTable: s.table, retentionDays: config.retentionDays })
}

/** Our own change log first, then every configured source. Nothing connects until first used. */
export function createSources(config: Config): ChangeSource[] {
  return [
    changeLogSource(config.dispatchPollMs, config.preparedStatements),
    ...config.sources.map((s) => createSource(s, config)),
  ]
}

/** Leaves out observers naming a source that is not configured, each reported (OB001 at /source). */
export function withKnownSources(
  loaded: { observers: Observer[]; problems: ObserverFileError[] },
  sources: readonly ChangeSource[],
): { observers: Observer[]; problems: ObserverFileError[] } {
  const names = new Set(sources.map((s) => s.name))
  const problems = [...loaded.problems]
  const observers = loaded.observers.filter((o) => {
    if (names.has(o.source)) return true
    problems.push(
      new ObserverFileError(
        ErrorCode.InvalidConfig,
        o.file,
        '/source',
        `source "${o.source}" is not configured (configured: ${[...names].join(', ')}; see OBSERVERS_SOURCES)`,
      ),
    )
    return false
  })
  return { observers, problems }
}

/** Health of every source measured now, for processes that run no dispatcher (`observers status`). */
export async function configuredSourceHealth(db: Queryable, config: Config): Promise<SourceHealth[]> {
  const sources = createSources(config)
  try {
    // Without a dispatcher nothing has read the sources that measure as they read: read one entry.
    // A failure is kept by the source and reported below as its lastError.
    const probe = { rows: 1, bytes: 1, changeBytes: config.maxChangeBytes }
    await Promise.all(sources.map((s) => s.read?.(db, probe).catch(() => {})))
    return await Promise.all(sources.map((s) => sourceHealth(s, db, { backlogWarn: config.backlogWarn })))
  } finally {
    await Promise.all(sources.map((s) => s.close()))
  }
}
