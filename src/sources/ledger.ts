import { lockKeys } from '../db/locks.ts'
import type { PoolClient, Queryable } from '../db/pool.ts'

/** Timestamps travel as UTC ISO-8601 text with microseconds, so no precision is lost on the way. */
export const isoFormat = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`

/** An entry as the ledger sees it. */
export interface LedgerEntry {
  key: string
  /** Source clock, UTC ISO-8601 with microseconds. */
  createdAt: string
  malformed: boolean
}

/** Takes this source's dispatch lock until the transaction ends; false when another worker has it. */
export async function tryLockSource(client: PoolClient, source: string): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>(
    'select pg_try_advisory_xact_lock($1::int, hashtext($2)) as ok',
    [lockKeys.sourceClass, source],
  )
  return rows[0]?.ok === true
}

/** The source's floor; on the first pass, `readAt` minus the commit window. */
export async function readFloor(db: Queryable, source: string, readAt: string, windowMs: number) {
  const { rows } = await db.query<{ floor: string }>(
    `select to_char(coalesce(
       (select floor from observers.source_progress where source = $1),
       $2::timestamptz - $3::int * interval '1 millisecond') at time zone 'UTC', ${isoFormat}) as floor`,
    [source, readAt, windowMs],
  )
  return rows[0]!.floor
}

/** Entries of the window already dispatched; with the source's own count it tells whether any are missing. */
export async function countLedger(db: Queryable, source: string, floor: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    `select count(*) as n from observers.source_ledger
      where source = $1 and entry_created_at > $2::timestamptz`,
    [source, floor],
  )
  return Number(rows[0]?.n ?? 0)
}

/** The keys not yet in the ledger, in the order given, at most `limit`, and how many there are in all. */
export async function missingKeys(
  db: Queryable,
  source: string,
  keys: readonly string[],
  limit: number,
): Promise<{ keys: string[]; total: number }> {
  const { rows } = await db.query<{ k: string; total: string }>(
    `select u.k, count(*) over () as total
       from unnest($2::text[]) with ordinality as u(k, o)
      -- A per-key lookup whatever the ledger's statistics say (see fraiseql/source.ts).
      where not exists (select 1 from observers.source_ledger l where l.source = $1 and l.entry_key = u.k offset 0)
      order by u.o limit $3`,
    [source, keys, limit],
  )
  return { keys: rows.map((r) => r.k), total: Number(rows[0]?.total ?? 0) }
}

/**
 * Records a pass: its entries join the ledger and the floor moves up to `readAt` minus the commit
 * window. When the pass was cut short by its limits, the floor stops just before `until`, the
 * last entry read, because entries created at the same instant may still be waiting.
 */
export async function recordPass(
  client: PoolClient,
  source: string,
  pass: { readAt: string; windowMs: number; entries: readonly LedgerEntry[]; until: string | null },
): Promise<void> {
  if (pass.entries.length > 0) {
    await client.query(
      `insert into observers.source_ledger (source, entry_key, entry_created_at, malformed)
       select $1, k, c, m from unnest($2::text[], $3::timestamptz[], $4::bool[]) as u(k, c, m)
       on conflict do nothing`,
      [
        source,
        pass.entries.map((e) => e.key),
        pass.entries.map((e) => e.createdAt),
        pass.entries.map((e) => e.malformed),
      ],
    )
  }
  await client.query(
    `insert into observers.source_progress as p (source, floor)
     values ($1, least($2::timestamptz - $3::int * interval '1 millisecond',
                       coalesce($4::timestamptz - interval '1 microsecond', 'infinity')))
     on conflict (source) do update set floor = greatest(p.floor, excluded.floor), updated_at = now()`,
    [source, pass.readAt, pass.windowMs, pass.until],
  )
}

/** Ledger entries a full window below the floor can never be read again. */
export async function pruneLedger(db: Queryable, source: string, windowMs: number): Promise<number> {
  const { rowCount } = await db.query(
    `delete from observers.source_ledger l using observers.source_progress p
      where p.source = $1 and l.source = $1
        and l.entry_created_at < p.floor - $2::int * interval '1 millisecond'`,
    [source, windowMs],
  )
  return rowCount ?? 0
}

export async function readStoredFloor(db: Queryable, source: string): Promise<string | undefined> {
  const { rows } = await db.query<{ floor: string }>(
    `select to_char(floor at time zone 'UTC', ${isoFormat}) as floor
       from observers.source_progress where source = $1`,
    [source],
  )
  return rows[0]?.floor
}
