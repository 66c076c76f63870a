import path from 'node:path'
import pg from 'pg'
import { startEmbedded } from '../src/db/embedded.ts'
import { createPool, type Pool } from '../src/db/pool.ts'
import { parentPid, processName } from './proc.ts'

export const benchTable = 'bench.events'

export interface Server {
  adminUrl: string
  embedded: boolean
  stop(): Promise<void>
}

export interface BenchDatabase {
  url: string
  name: string
  pool: Pool
  drop(): Promise<void>
}

const embeddedDir = path.resolve('.data/bench-postgres')

/**
 * DATABASE_URL's server when set, else an embedded Postgres under .data/bench-postgres, which
 * loads pg_stat_statements (set once with ALTER SYSTEM, then restarted) so statement costs show.
 */
export async function provideServer(env: Record<string, string | undefined>): Promise<Server> {
  if (env.DATABASE_URL) return { adminUrl: env.DATABASE_URL, embedded: false, stop: async () => {} }
  let server = await startEmbedded(embeddedDir)
  const loaded = await admin(server.url, async (c) => {
    const { rows } = await c.query<{ v: string }>('select current_setting($1) as v', [
      'shared_preload_libraries',
    ])
    if (rows[0]?.v.includes('pg_stat_statements')) return true
    await c.query("alter system set shared_preload_libraries = 'pg_stat_statements'")
    return false
  })
  if (!loaded) {
    await server.stop()
    server = await startEmbedded(embeddedDir)
  }
  await admin(server.url, async (c) => {
    await c.query('alter system set pg_stat_statements.track_planning = on')
    await c.query('select pg_reload_conf()')
  })
  const running = server
  return { adminUrl: running.url, embedded: true, stop: () => running.stop() }
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url)
  u.pathname = `/${name}`
  return u.toString()
}

async function admin<T>(adminUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: adminUrl })
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}

/**
 * A fresh database for this run, with pg-boss's schema and our migrations (applied by `migrateDb`)
 * and the bench table.
 */
export async function createBenchDatabase(
  adminUrl: string,
  migrateDb: (url: string) => Promise<void>,
): Promise<BenchDatabase> {
  const name = `observers_bench_${Date.now().toString(36)}_${process.pid}`
  await admin(adminUrl, (c) => c.query(`create database ${name}`))
  const url = withDatabase(adminUrl, name)
  await migrateDb(url)
  const pool = createPool(url, { max: 4, name: 'pg-observers-bench' })
  await pool.query(`create schema bench;
    create table ${benchTable} (
      id bigint generated always as identity primary key,
      account_id int not null,
      status text not null,
      amount numeric(12, 2) not null,
      note text,
      created_at timestamptz not null default now()
    )`)
  return {
    url,
    name,
    pool,
    async drop() {
      await pool.end()
      await admin(adminUrl, (c) => c.query(`drop database if exists ${name} with (force)`))
    },
  }
}

/** The postmaster's pid when the server runs on this machine: the parent of our backend. */
export async function postmasterPid(pool: Pool): Promise<number | undefined> {
  const { rows } = await pool.query<{ pid: number }>('select pg_backend_pid() as pid')
  const backend = rows[0]?.pid
  // A remote server's pid may name an unrelated local process; only trust a local postgres.
  if (backend === undefined || !processName(backend)?.startsWith('postgres')) return undefined
  return parentPid(backend)
}

export async function serverVersion(pool: Pool): Promise<string> {
  const { rows } = await pool.query<{ v: string }>('select version() as v')
  return rows[0]?.v ?? 'unknown'
}

/** Attaches the capture trigger as the worker would, for runs without a worker. */
export async function watchBenchTable(pool: Pool): Promise<void> {
  await pool.query(`select observers.watch('${benchTable}'::regclass)`)
}

export async function unwatchBenchTable(pool: Pool): Promise<void> {
  await pool.query(`select observers.unwatch('${benchTable}'::regclass)`)
}

/**
 * The change log and, in schemas that have it (a `--worker-root` may be older), the dispatcher's
 * queue of undispatched changes: emptied together, or the queue would name changes that are gone.
 */
export async function changeTables(pool: Pool): Promise<string> {
  const { rows } = await pool.query<{ queue: string | null }>(
    `select to_regclass('observers.change_pending')::text as queue`,
  )
  return rows[0]?.queue ? 'observers.change_log, observers.change_pending' : 'observers.change_log'
}

/** Empties the bench table and the change log, so the next scenario starts from nothing. */
export async function resetTables(pool: Pool): Promise<void> {
  await pool.query(`truncate ${benchTable}, ${await changeTables(pool)}`)
  await pool.query('vacuum analyze observers.change_log')
  await checkpoint(pool)
}

/**
 * Flushes dirty pages now rather than in the middle of the next measurement; after it, every
 * measurement starts in the same state (full-page writes on first touch). Needs superuser or
 * pg_checkpoint; without them the measurement just carries that noise.
 */
export async function checkpoint(pool: Pool): Promise<void> {
  await pool.query('checkpoint').catch(() => {})
}

export async function undispatchedCount(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>('select count(*) as n from observers.change_pending')
  return Number(rows[0]?.n ?? 0)
}

/**
 * Empties pg-boss's job table, so one measurement's jobs (and their dead tuples, as DELETE would
 * leave) do not slow the next one's fetches. Only the benchmark uses this database.
 */
export async function clearJobs(pool: Pool): Promise<void> {
  await pool.query('truncate pgboss.job')
}
