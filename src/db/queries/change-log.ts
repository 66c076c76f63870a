import { AppError, coerceError, ErrorCode } from '../../errors/errors.ts'
import type { ChangeEvent, EventKind, Row } from '../../event/event.ts'
import { parseExact } from '../../json/exact.ts'
import type { Queryable } from '../pool.ts'
import { type Statements, statements } from '../statements.ts'

interface ChangeRow {
  seq: string
  id: string
  event: EventKind
  entity: string
  entity_id: string
  /** Row images as JSON text, parsed per row so one unreadable change cannot fail a batch. */
  before: string | null
  after: string | null
  changed: string[]
  tenant_id: string | null
  actor_id: string | null
  txid: string
  traceparent: string | null
  /** ISO-8601 text where the statement formats it (milliseconds, as Date#toISOString prints). */
  created_at: Date | string
}

/**
 * Column values nested deeper than this are refused: the JSON parser and serialiser recurse, and
 * a stack overflow must not take the dispatcher down with it. Postgres itself accepts somewhat more.
 */
export const maxJsonDepth = 2000

/** Deepest nesting of `[`/`{` in JSON text, in one pass (strings skipped). */
function jsonDepth(text: string): number {
  let depth = 0
  let max = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 || c === 91) max = Math.max(max, ++depth)
    else if (c === 125 || c === 93) depth--
  }
  return max
}

function readImage(text: string | null): Row | null {
  if (text === null) return null
  // Nesting n needs 2n characters, so short images need no scan; the row itself is one level.
  if (text.length > 2 * maxJsonDepth && jsonDepth(text) > maxJsonDepth + 1) {
    throw new Error(`a JSON value is nested more than ${maxJsonDepth} levels deep`)
  }
  return parseExact(text) as Row
}

/** A change-log row that cannot become an event; the dispatcher dead-letters it. */
export interface UnreadableChange {
  seq: number
  id: string
  event: EventKind
  entity: string
  entity_id: string
  txid: string
  created_at: string
  error: string
}

function toEvent(r: ChangeRow): ChangeEvent {
  let images: { before: Row | null; after: Row | null }
  try {
    images = { before: readImage(r.before), after: readImage(r.after) }
  } catch (err) {
    throw new AppError(
      ErrorCode.DatabaseError,
      `change ${r.seq} cannot be read: ${coerceError(err).message}`,
      {
        cause: err,
      },
    )
  }
  return {
    id: r.id,
    seq: Number(r.seq),
    event: r.event,
    entity: r.entity,
    entity_id: r.entity_id,
    ...images,
    changed: r.changed,
    tenant_id: r.tenant_id,
    actor_id: r.actor_id,
    txid: r.txid,
    created_at: typeof r.created_at === 'string' ? r.created_at : r.created_at.toISOString(),
    ...(r.traceparent ? { traceparent: r.traceparent } : {}),
  }
}

/** The change-log columns of an event; images are left out (null) where `skipImages` holds. */
function eventColumns(skipImages = 'false', createdAt = 'c.created_at') {
  const image = (col: string) => `case when ${skipImages} then null else c.${col}::text end as ${col}`
  return `c.seq, c.id, c.event, c.entity, c.entity_id, ${image('before')}, ${image('after')}, c.changed, c.tenant_id, c.actor_id, c.txid::text as txid, c.traceparent, ${createdAt} as created_at`
}

function unreadable(r: ChangeRow, err: unknown): UnreadableChange {
  const { seq, id, event, entity, entity_id, txid, created_at } = r
  const error = coerceError(err).message
  const at = typeof created_at === 'string' ? created_at : created_at.toISOString()
  return { seq: Number(seq), id, event, entity, entity_id, txid, created_at: at, error }
}

/** What one claim may take: changes, bytes of row images, and the largest change it will read. */
export interface ClaimLimits {
  rows: number
  /** Row-image bytes per claim; the first change is taken whatever its size. */
  bytes: number
  /** A change with more image bytes is dead-lettered without its images ever being read. */
  changeBytes: number
}

/**
 * The partitions of the change log a claim takes from: a change belongs to partition
 * `key_hash mod count` (migrations/0011_dispatch_partitions.sql), so a row's changes share one.
 */
export interface PartitionScope {
  count: number
  /** Ascending, each below count. */
  led: readonly number[]
  /**
   * Skip changes another transaction holds instead of failing the claim: for a claimer that
   * hangs, where waiting would stop the partition (src/dispatch/dispatcher.ts).
   */
  skipHeld?: boolean
}

/** Every partition: one worker leading them all claims as if there were none. */
export const allPartitions: PartitionScope = { count: 1, led: [0] }

/** The claim's filter on change_pending: none when the scope covers every partition. */
function partitionFilter(scope: PartitionScope): { name: string; where: string } {
  const led = scope.led.map((p) => Math.trunc(p)).filter((p) => p >= 0 && p < scope.count)
  if (led.length >= scope.count) return { name: '', where: '' }
  // A change whose log row is gone has no hash; it is dead weight claimed by partition 0.
  const part = `(coalesce(key_hash, 0) & 2147483647) % ${Math.trunc(scope.count)}`
  return {
    name: `-p${scope.count}-${led.join('.')}`,
    where: `where ${part} ${led.length === 1 ? `= ${led[0]}` : `in (${led.join(', ')})`}`,
  }
}

/**
 * Named, so a connection plans it once per set of limits and partitions: it runs on every dispatch pass, and under
 * light load that is once per change, where planning cost more than running it. The limits are
 * literals so that one plan is made for them; a generic plan for `limit $1`, made while the change
 * log was small, ran 4-15x slower (docs/performance.md). It claims from change_pending, a small
 * table of undispatched seqs: an index over change_log's undispatched rows kept an entry for
 * every dispatched row until the table's next vacuum, and claims walked past them all.
 */
function claimStatement(limits: ClaimLimits, scope: PartitionScope) {
  const rows = Math.max(1, Math.trunc(limits.rows))
  const bytes = Math.max(1, Math.trunc(limits.bytes))
  const max = Math.max(1, Math.trunc(limits.changeBytes))
  const partitions = partitionFilter(scope)
  return {
    name: `observers.claim-changes-${rows}-${bytes}-${max}${partitions.name}${scope.skipHeld ? '-skip' : ''}`,
    // Sizes come from change_pending, recorded at capture, so no image is read to choose the
    // batch: the oldest candidates are taken while the bytes before each stay under the budget.
    // An oversized change weighs nothing, because its images are never loaded.
    // `= any(array(…))` plans as index lookups whatever the tables held when the plan was made;
    // a join planned on an empty change log stayed a sequential scan of all of it.
    // One row even when nothing was claimed, carrying the count of queue entries taken and seen:
    // an entry whose change-log row is gone (a truncated log) yields no event but still counts.
    // NOWAIT, not SKIP LOCKED: a change locked by another claim (a leader hand-over, workers
    // configured with different partition counts) fails this claim instead of letting it take a
    // later change of the same row first. The filter is checked before a row is locked, so claims
    // of other partitions never meet; the caller treats the failure as "busy" (isClaimBusy), and
    // after 2 s of it claims with SKIP LOCKED for a while (scope.skipHeld).
    text: `with candidates as (
       select seq, coalesce(bytes, 0) as bytes from observers.change_pending ${partitions.where}
        order by seq limit ${rows} for update ${scope.skipHeld ? 'skip locked' : 'nowait'}
     ), taken as (
       select seq, bytes from (
         select seq, bytes, coalesce(sum(case when bytes > ${max} then 0 else bytes end)
                  over (order by seq rows between unbounded preceding and 1 preceding), 0) as preceding
           from candidates) s
        where preceding < ${bytes}
     ), claimed as (
       delete from observers.change_pending
        where seq = any(array(select seq from taken))
       returning seq
     ), marked as (
       select ${eventColumns(`c.seq = any(array(select seq from taken where bytes > ${max}))`)}
         from observers.change_log c
        where c.seq = any(array(select seq from claimed))
     )
     select n.claimed, n.candidates, t.bytes, m.*
       from (select (select count(*) from claimed)::int as claimed,
                    (select count(*) from candidates)::int as candidates) n
       left join marked m on true left join taken t on t.seq = m.seq`,
  }
}

/** A claim's row: the counts of queue entries taken and seen, and a change unless none was marked. */
type ClaimRow = { claimed: number; candidates: number; bytes: string | null } & (
  | ChangeRow
  | Record<keyof ChangeRow, null>
)

function oversized(r: ChangeRow, bytes: number, max: number): UnreadableChange {
  const error = `change ${r.seq} has ${bytes} bytes of row images, more than OBSERVERS_MAX_CHANGE_BYTES (${max}); it was not read`
  return unreadable(r, new Error(error))
}

/**
 * Claims undispatched changes of the partitions in `scope` within `limits`, taking them out of
 * change_pending (which alone says what is undispatched) inside the caller's transaction: if the
 * caller rolls back, the changes are undispatched again. The change-log rows are only read. A change another transaction is claiming fails the claim (isClaimBusy).
 * `more` tells that the limits, not the queue, ended the claim.
 */
export async function claimChanges(
  db: Queryable,
  limits: ClaimLimits,
  run: Statements = statements(true),
  scope: PartitionScope = allPartitions,
): Promise<{ events: ChangeEvent[]; unreadable: UnreadableChange[]; more: boolean }> {
  const { rows } = (await run.run(db, claimStatement(limits, scope), [])) as { rows: ClaimRow[] }
  const events: ChangeEvent[] = []
  const unreadableRows: UnreadableChange[] = []
  for (const r of rows) {
    if (r.seq === null) continue
    const bytes = Number(r.bytes ?? 0)
    if (bytes > limits.changeBytes) {
      unreadableRows.push(oversized(r, bytes, limits.changeBytes))
      continue
    }
    try {
      events.push(toEvent(r))
    } catch (err) {
      unreadableRows.push(unreadable(r, err))
    }
  }
  const claimed = rows[0]?.claimed ?? 0
  const candidates = rows[0]?.candidates ?? 0
  return {
    events: events.sort((a, b) => a.seq - b.seq),
    unreadable: unreadableRows.sort((a, b) => a.seq - b.seq),
    more: claimed >= limits.rows || candidates > claimed,
  }
}

/** A claim failed on a change another transaction holds (lock_not_available): try again shortly. */
export function isClaimBusy(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === '55P03'
}

/** Changes in a seq range or since a time, optionally of some tables only, for replay. */
export async function selectChanges(
  db: Queryable,
  range: {
    fromSeq?: number
    toSeq?: number
    since?: Date
    until?: Date
    entities?: readonly string[]
    afterSeq: number
    limit: number
  },
): Promise<ChangeEvent[]> {
  // created_at comes as text: parsing a Date per row and printing it again took a tenth of a
  // replay's CPU. MS truncates, as the Date parsed from the timestamp does.
  const { rows } = await db.query<ChangeRow>(
    `select ${eventColumns('false', `to_char(c.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`)}
       from observers.change_log c
      where c.seq > $1
        and ($2::bigint is null or c.seq >= $2) and ($3::bigint is null or c.seq <= $3)
        and ($4::timestamptz is null or c.created_at >= $4)
        and ($6::text[] is null or c.entity = any($6))
        and ($7::timestamptz is null or c.created_at < $7)
      order by c.seq limit $5`,
    [
      range.afterSeq,
      range.fromSeq ?? null,
      range.toSeq ?? null,
      range.since ?? null,
      range.limit,
      range.entities ?? null,
      range.until ?? null,
    ],
  )
  return rows.map(toEvent)
}

export interface Backlog {
  undispatched: number
  oldestAgeSeconds: number | null
}

export async function backlog(db: Queryable): Promise<Backlog> {
  const { rows } = await db.query<{ n: string; age: number | null }>(
    `select count(*) as n, extract(epoch from now() - min(c.created_at))::float8 as age
       from observers.change_pending p join observers.change_log c using (seq)`,
  )
  return { undispatched: Number(rows[0]?.n ?? 0), oldestAgeSeconds: rows[0]?.age ?? null }
}

/**
 * Deletes dispatched rows (no longer in change_pending) older than `days`, `batch` rows per
 * statement, so no lock is held long. An undispatched change stays however old it is.
 */
export async function pruneChanges(db: Queryable, days: number, batch = 5000): Promise<number> {
  let total = 0
  for (;;) {
    const { rowCount } = await db.query(
      `delete from observers.change_log where seq in (
         select c.seq from observers.change_log c
          where c.created_at < now() - $1::int * interval '1 day'
            and not exists (select 1 from observers.change_pending p where p.seq = c.seq)
          limit $2)`,
      [days, batch],
    )
    total += rowCount ?? 0
    if ((rowCount ?? 0) < batch) return total
  }
}
