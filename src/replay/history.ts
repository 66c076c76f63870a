import type { Config } from '../config/config.ts'
import type { Pool } from '../db/pool.ts'
import { selectChanges } from '../db/queries/change-log.ts'
import { ConfigError, ErrorCode } from '../errors/errors.ts'
import { ownSource } from '../observers/types.ts'
import { fraiseqlHistory } from '../sources/fraiseql/history.ts'
import { mysqlHistory } from '../sources/mysql/history.ts'
import type { History, HistoryWindow } from '../sources/types.ts'

export type { History, HistoryWindow }

function changeLogHistory(pool: Pool, w: HistoryWindow): History {
  return {
    source: ownSource,
    async page(afterKey, limit) {
      const events = await selectChanges(pool, {
        afterSeq: afterKey === undefined ? 0 : Number(afterKey),
        limit,
        ...(w.since ? { since: w.since } : {}),
        ...(w.until ? { until: w.until } : {}),
        ...(w.fromSeq === undefined ? {} : { fromSeq: w.fromSeq }),
        ...(w.toSeq === undefined ? {} : { toSeq: w.toSeq }),
        ...(w.entity === undefined ? {} : { entities: [w.entity] }),
      })
      const last = events.at(-1)
      return { events, read: events.length, lastKey: last ? String(last.seq) : afterKey }
    },
    async count() {
      const { rows } = await pool.query<{ n: string }>(
        `select count(*) as n from observers.change_log
          where ($1::bigint is null or seq >= $1) and ($2::bigint is null or seq <= $2)
            and ($3::timestamptz is null or created_at >= $3)
            and ($4::timestamptz is null or created_at < $4)
            and ($5::text is null or entity = $5)`,
        [w.fromSeq ?? null, w.toSeq ?? null, w.since ?? null, w.until ?? null, w.entity ?? null],
      )
      return Number(rows[0]?.n ?? 0)
    },
    async close() {},
  }
}

/** The history of the source named `source` (`changelog` is ours); OB001 when none is configured. */
export function openHistory(pool: Pool, config: Config, source: string, w: HistoryWindow): History {
  if (source === ownSource) return changeLogHistory(pool, w)
  const s = config.sources.find((c) => c.name === source)
  if (!s) {
    const names = [ownSource, ...config.sources.map((c) => c.name)].join(', ')
    throw new ConfigError(
      ErrorCode.InvalidConfig,
      `source "${source}" is not configured (configured: ${names})`,
    )
  }
  const common = { name: s.name, table: s.table, maxChangeBytes: config.maxChangeBytes }
  if (s.kind === 'fraiseql') return fraiseqlHistory(pool, common, w)
  return mysqlHistory({ ...common, url: s.url ?? '' }, w)
}
