import { type Pool, type PoolClient, withTransaction } from '../db/pool.ts'
import type { AttemptRecord, Delivery } from '../event/delivery.ts'
import { bossSchema, dlqQueue, fromJobData, type JobData } from './boss.ts'

/** Selects dead letters; every field narrows, and none set selects them all. */
export interface DlqFilter {
  observer?: string | undefined
  /** action type */
  type?: string | undefined
  /** schema-qualified table */
  entity?: string | undefined
  /** dead-lettered at or after */
  since?: Date | undefined
  /** dead-lettered before */
  until?: Date | undefined
  ids?: readonly string[] | undefined
  /** the last attempt's error code (OB…) */
  code?: string | undefined
}

/** One row of `observers dlq list` and GET /api/dlq, the columns of the observers.dlq view. */
export interface DeadLetter {
  id: string
  observer: string
  action_type: string
  action_index: number
  delivery_id: string
  event_id: string
  event: string
  entity: string
  entity_id: string
  last_error: string | null
  last_error_code: string | null
  attempts: number
  failed_at: Date
  source_queue: string | null
}

/** A dead letter with the delivery it carries: action snapshot, event and every attempt. */
export interface DeadLetterDetail extends DeadLetter {
  delivery: Delivery
  attempt_history: AttemptRecord[]
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function isJobId(id: string): boolean {
  return uuidPattern.test(id)
}

const job = `${bossSchema}.job`

// The observers.dlq view (migrations/0005) is the one definition of a dead letter's columns.
const columns = `d.id, d.observer, d.action_type, d.action_index, d.delivery_id, d.event_id::text,
  d.event, d.entity, d.entity_id, d.last_error, d.last_error_code, d.attempts, d.failed_at,
  d.source_queue`

// Parameters $1..$7 are the filter; callers append their own from $8.
const where = `($1::text is null or d.observer = $1)
  and ($2::text is null or d.action_type = $2)
  and ($3::text is null or d.entity = $3)
  and ($4::timestamptz is null or d.failed_at >= $4)
  and ($5::timestamptz is null or d.failed_at < $5)
  and ($6::uuid[] is null or d.id = any($6::uuid[]))
  and ($7::text is null or d.last_error_code = $7)`

function filterParams(f: DlqFilter): unknown[] {
  const ids = f.ids?.filter(isJobId)
  return [
    f.observer ?? null,
    f.type ?? null,
    f.entity ?? null,
    f.since ?? null,
    f.until ?? null,
    ids ?? null,
    f.code ?? null,
  ]
}

export interface DlqPage {
  items: DeadLetter[]
  /** Pass back as `cursor` for the next (older) page; null on the last page. */
  nextCursor: string | null
}

/** Newest first, keyset-paginated on (failed_at, id) so pages stay stable while rows arrive. */
export async function listDeadLetters(
  db: Pool,
  filter: DlqFilter,
  page: { limit: number; cursor?: string | undefined },
): Promise<DlqPage> {
  const after = page.cursor ? decodeCursor(page.cursor) : undefined
  const { rows } = await db.query<DeadLetter & { cursor_us: string }>(
    `select ${columns}, (extract(epoch from d.failed_at) * 1000000)::bigint::text as cursor_us
       from observers.dlq d
      where ${where}
        and ($8::bigint is null or (d.failed_at, d.id) <
             (timestamptz 'epoch' + $8::bigint * interval '1 microsecond', $9::uuid))
      order by d.failed_at desc, d.id desc
      limit $10`,
    [...filterParams(filter), after?.us ?? null, after?.id ?? null, page.limit + 1],
  )
  // One row more than asked for tells whether another page exists.
  const items = rows.slice(0, page.limit)
  const last = rows.length > page.limit ? items.at(-1) : undefined
  return {
    items: items.map(({ cursor_us: _, ...item }) => item),
    nextCursor: last ? Buffer.from(`${last.cursor_us}:${last.id}`).toString('base64url') : null,
  }
}

/** Undefined when the cursor was not made by listDeadLetters. */
function decodeCursor(cursor: string): { us: string; id: string } | undefined {
  // 18 digits of microseconds reach the year 33658: more would overflow bigint or timestamptz.
  const m = /^(\d{1,18}):(.+)$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'))
  return m?.[1] && m[2] && isJobId(m[2]) ? { us: m[1], id: m[2] } : undefined
}

export function isValidCursor(cursor: string): boolean {
  return decodeCursor(cursor) !== undefined
}

export async function getDeadLetter(db: Pool, id: string): Promise<DeadLetterDetail | undefined> {
  if (!isJobId(id)) return undefined
  const { rows } = await db.query<DeadLetter & { data: JobData }>(
    `select ${columns}, j.data
       from observers.dlq d join ${job} j on j.name = $8 and j.id = d.id
      where ${where}`,
    [...filterParams({ ids: [id] }), dlqQueue],
  )
  const row = rows[0]
  if (!row) return undefined
  const { data, ...item } = row
  const { attempts, ...delivery } = fromJobData(data)
  return { ...item, delivery, attempt_history: attempts ?? [] }
}

interface DeadRow {
  id: string
  source_name: string
  source_id: string | null
  singleton_key: string | null
  group_id: string | null
  group_tier: string | null
}

/**
 * A failed job of a strict-FIFO queue holds its key until it is gone; deleting it lets the
 * key's later deliveries (and the retried one) run.
 */
async function unblockKeys(client: PoolClient, rows: readonly DeadRow[]) {
  const held = rows.filter((r) => r.source_name.endsWith('.ordered') && r.source_id)
  if (held.length === 0) return
  await client.query(
    `delete from ${job} j using unnest($1::text[], $2::uuid[]) as s(name, id)
      where j.name = s.name and j.id = s.id and j.state = 'failed'`,
    [held.map((r) => r.source_name), held.map((r) => r.source_id)],
  )
}

/**
 * Puts dead letters back on their source queues as fresh jobs (attempts cleared, same delivery
 * id), removing each from the DLQ in the same statement: observers.requeue_dead_letters
 * (migrations/0005, as 0019 redefines it), which psql's observers.retry_dead_letters shares. A
 * retried delivery of an ordered row is due from its original place, ahead of the row's later
 * changes (test/queue/dlq-ordered-retry.test.ts). Rows dead-lettered after the call began are
 * left alone, so a delivery that fails again at once is not retried in a loop. Returns the new
 * job ids.
 */
export async function retryDeadLetters(
  pool: Pool,
  filter: DlqFilter,
  opts: { batchSize?: number } = {},
): Promise<string[]> {
  const { rows } = await pool.query<{ now: Date }>('select clock_timestamp() as now')
  const startedAt = rows[0]!.now
  const until = filter.until && filter.until < startedAt ? filter.until : startedAt
  const [observer, type, entity, since, , given] = filterParams(filter)
  // observers.requeue_dead_letters knows no error code: a code narrows to the ids it selects.
  const ids = filter.code ? await idsMatching(pool, { ...filter, until }) : given
  const batchSize = opts.batchSize ?? 200
  const all: string[] = []
  for (;;) {
    const { rows: moved } = await pool.query<{ job_id: string }>(
      'select job_id from observers.requeue_dead_letters($1, $2, $3, $4, $5, $6, $7)',
      [observer, type, entity, since, until, ids, batchSize],
    )
    all.push(...moved.map((r) => r.job_id))
    if (moved.length < batchSize) return all
  }
}

async function idsMatching(db: Pool, filter: DlqFilter): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `select d.id from observers.dlq d where ${where}`,
    filterParams(filter),
  )
  return rows.map((r) => r.id)
}

/** How many dead letters the filter selects: what a purge or a retry of it would touch. */
export async function countDeadLetters(db: Pool, filter: DlqFilter): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `select count(*)::int as n from observers.dlq d where ${where}`,
    filterParams(filter),
  )
  return rows[0]?.n ?? 0
}

/** Deletes dead letters for good (and the failed strict-FIFO jobs holding their keys). */
export async function purgeDeadLetters(pool: Pool, filter: DlqFilter): Promise<number> {
  return withTransaction(pool, async (client) => {
    const { rows } = await client.query<DeadRow>(
      `delete from ${job} j
        where j.name = $8 and j.id in (select d.id from observers.dlq d where ${where})
       returning j.id, j.source_name, j.source_id, j.singleton_key, j.group_id, j.group_tier`,
      [...filterParams(filter), dlqQueue],
    )
    await unblockKeys(
      client,
      rows.filter((r) => r.source_name),
    )
    return rows.length
  })
}
