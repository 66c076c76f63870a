import type { ChangeEvent, EventKind, Row } from '../../event.ts'
import type { Queryable } from '../pool.ts'

interface ChangeRow {
  seq: string
  id: string
  event: EventKind
  entity: string
  entity_id: string
  before: Row | null
  after: Row | null
  changed: string[]
  tenant_id: string | null
  actor_id: string | null
  txid: string
  traceparent: string | null
  created_at: Date
}

function toEvent(r: ChangeRow): ChangeEvent {
  return {
    id: r.id,
    seq: Number(r.seq),
    event: r.event,
    entity: r.entity,
    entity_id: r.entity_id,
    before: r.before,
    after: r.after,
    changed: r.changed,
    tenant_id: r.tenant_id,
    actor_id: r.actor_id,
    txid: r.txid,
    created_at: r.created_at.toISOString(),
    ...(r.traceparent ? { traceparent: r.traceparent } : {}),
  }
}

const eventColumns =
  'c.seq, c.id, c.event, c.entity, c.entity_id, c.before, c.after, c.changed, c.tenant_id, c.actor_id, c.txid::text as txid, c.traceparent, c.created_at'

/**
 * Claims up to `limit` undispatched changes and marks them dispatched, inside the caller's
 * transaction: if the caller rolls back, the changes are undispatched again. SKIP LOCKED keeps a
 * second claimer (a replay, or a leader hand-over) from waiting on or taking the same rows.
 */
export async function claimChanges(db: Queryable, limit: number): Promise<ChangeEvent[]> {
  const { rows } = await db.query<ChangeRow>(
    `with claimed as (
       select seq from observers.change_log
        where dispatched_at is null
        order by seq
        limit $1
        for update skip locked
     )
     update observers.change_log c set dispatched_at = now()
       from claimed where c.seq = claimed.seq
     returning ${eventColumns}`,
    [limit],
  )
  return rows.map(toEvent).sort((a, b) => a.seq - b.seq)
}

/** Changes in a seq range or since a time, for replay. */
export async function selectChanges(
  db: Queryable,
  range: { fromSeq?: number; toSeq?: number; since?: Date; afterSeq: number; limit: number },
): Promise<ChangeEvent[]> {
  const { rows } = await db.query<ChangeRow>(
    `select ${eventColumns} from observers.change_log c
      where c.seq > $1
        and ($2::bigint is null or c.seq >= $2) and ($3::bigint is null or c.seq <= $3)
        and ($4::timestamptz is null or c.created_at >= $4)
      order by c.seq limit $5`,
    [range.afterSeq, range.fromSeq ?? null, range.toSeq ?? null, range.since ?? null, range.limit],
  )
  return rows.map(toEvent)
}

export interface Backlog {
  undispatched: number
  oldestAgeSeconds: number | null
}

export async function backlog(db: Queryable): Promise<Backlog> {
  const { rows } = await db.query<{ n: string; age: number | null }>(
    `select count(*) as n, extract(epoch from now() - min(created_at))::float8 as age
       from observers.change_log where dispatched_at is null`,
  )
  return { undispatched: Number(rows[0]?.n ?? 0), oldestAgeSeconds: rows[0]?.age ?? null }
}

/** Deletes dispatched rows older than `days`, `batch` rows per statement, so no lock is held long. */
export async function pruneChanges(db: Queryable, days: number, batch = 5000): Promise<number> {
  let total = 0
  for (;;) {
    const { rowCount } = await db.query(
      `delete from observers.change_log where seq in (
         select seq from observers.change_log
          where dispatched_at is not null and created_at < now() - $1::int * interval '1 day'
          limit $2)`,
      [days, batch],
    )
    total += rowCount ?? 0
    if ((rowCount ?? 0) < batch) return total
  }
}
