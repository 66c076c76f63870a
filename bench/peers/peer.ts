import { request } from 'undici'
import type { Pool } from '../../src/db/pool.ts'
import { benchTable } from '../database.ts'

/**
 * Another way to turn a bench-table change into a POST to the receiver, measured on the same
 * workloads as pg-observers (docs/performance.md, "Peers"). `install` and `uninstall` run in the
 * benchmark; `run` runs in a child process (bench/peers/child.ts) so its CPU is its own.
 */
export interface Peer {
  name: string
  /** Creates what the peer needs in the database and its trigger on the bench table. */
  install(pool: Pool, databaseUrl: string): Promise<void>
  /** Drops the trigger, so the next contender captures alone. */
  uninstall(pool: Pool): Promise<void>
  run(databaseUrl: string, receiverUrl: string): Promise<{ stop(): Promise<void> }>
}

/**
 * The row change as pg-observers' default webhook body carries it (before and after images),
 * built in a trigger, so every peer ships the same bytes.
 */
export const changeJson = `jsonb_build_object(
    'op', tg_op, 'table', tg_table_schema || '.' || tg_table_name,
    'before', case when tg_op = 'UPDATE' then to_jsonb(old) end, 'after', to_jsonb(new))`

/** An AFTER INSERT OR UPDATE row trigger on the bench table that runs `body` (PL/pgSQL). */
export async function installTrigger(pool: Pool, name: string, body: string): Promise<void> {
  await pool.query(`
    create or replace function bench.${name}() returns trigger language plpgsql as $$
    begin
      ${body};
      return null;
    end $$;
    drop trigger if exists ${name} on ${benchTable};
    create trigger ${name} after insert or update on ${benchTable}
      for each row execute function bench.${name}()`)
}

export async function dropTrigger(pool: Pool, name: string): Promise<void> {
  await pool.query(`drop trigger if exists ${name} on ${benchTable}`)
}

/** POSTs a JSON body; a non-2xx answer throws, so the peer's own retry takes over. */
export async function postJson(url: string, body: unknown): Promise<void> {
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  await res.body.dump()
  if (res.statusCode >= 300) throw new Error(`receiver answered ${res.statusCode}`)
}
