import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { AppError, ErrorCode } from '../errors/errors.ts'
import type { Logger } from '../log/log.ts'
import { lockKeys } from './locks.ts'
import { type Pool, type Queryable, withTransaction } from './pool.ts'

export const migrationsDir = fileURLToPath(new URL('../../migrations/', import.meta.url))

/**
 * A migration whose first line is this marker changes the schema in a way older workers cannot
 * run against (a dropped column, a changed meaning); docs/database.md says when to use it.
 */
const breakingMarker = /^--\s*breaking\b/i

interface Migration {
  id: number
  name: string
  file: string
}

interface AppliedMigration {
  id: number
  name: string
  breaking: boolean
}

const fileName = (m: { id: number; name: string }) => `${String(m.id).padStart(4, '0')}_${m.name}`

async function listMigrations(): Promise<Migration[]> {
  const files = (await readdir(migrationsDir)).filter((f) => /^\d{4}_.+\.sql$/.test(f)).sort()
  return files.map((file) => ({ id: Number(file.slice(0, 4)), name: file.slice(5, -4), file }))
}

/**
 * Applies pending migrations, each in its own transaction under an advisory lock, and records
 * whether each is breaking. Returns the names applied. Migrations in the database that this code
 * does not know are left alone; it refuses to run when one of them is breaking.
 */
export async function migrate(pool: Pool): Promise<string[]> {
  const migrations = await listMigrations()
  const applied: string[] = []
  for (const m of migrations) {
    const done = await withTransaction(pool, async (client) => {
      await client.query('select pg_advisory_xact_lock($1)', [lockKeys.migration])
      await client.query('create schema if not exists observers')
      await client.query(`create table if not exists observers.migrations (
        id int primary key, name text not null, applied_at timestamptz not null default now())`)
      await client.query(
        'alter table observers.migrations add column if not exists breaking boolean not null default false',
      )
      refuseBreaking(await readApplied(client), migrations)
      const { rowCount } = await client.query('select 1 from observers.migrations where id = $1', [m.id])
      if (rowCount) return false
      const sql = await readFile(path.join(migrationsDir, m.file), 'utf8')
      // Inserted first so a racing migrator fails on the primary key instead of applying twice.
      await client.query('insert into observers.migrations (id, name, breaking) values ($1, $2, $3)', [
        m.id,
        m.name,
        breakingMarker.test(sql),
      ])
      await client.query(sql)
      return true
    })
    if (done) applied.push(m.file)
  }
  return applied
}

/**
 * The migrations recorded in the database; empty when none ever ran. Reads `breaking` through
 * to_jsonb so a table written before that column existed still answers.
 */
async function readApplied(db: Queryable): Promise<AppliedMigration[]> {
  const { rows } = await db.query<{ exists: boolean }>(
    "select to_regclass('observers.migrations') is not null as exists",
  )
  if (!rows[0]?.exists) return []
  const { rows: applied } = await db.query<AppliedMigration>(
    `select id, name, coalesce((to_jsonb(m) ->> 'breaking')::boolean, false) as breaking
       from observers.migrations m order by id`,
  )
  return applied
}

function unknownTo(applied: AppliedMigration[], migrations: Migration[]): AppliedMigration[] {
  const known = new Set(migrations.map((m) => m.id))
  return applied.filter((a) => !known.has(a.id))
}

function refuseBreaking(applied: AppliedMigration[], migrations: Migration[]): void {
  const breaking = unknownTo(applied, migrations).filter((a) => a.breaking)
  if (breaking.length === 0) return
  throw new AppError(
    ErrorCode.DatabaseError,
    `database has breaking migrations newer than this version: ${breaking.map(fileName).join(', ')}; upgrade pg-observers`,
  )
}

/**
 * The worker's read-only schema check (it runs no DDL against DATABASE_URL): every migration this
 * code knows must be applied, and none it does not know may be breaking. Newer, non-breaking
 * migrations — a rolled-back deploy — are logged and the worker runs.
 */
export async function checkSchema(db: Queryable, log: Logger): Promise<void> {
  const migrations = await listMigrations()
  const applied = await readApplied(db)
  const done = new Set(applied.map((a) => a.id))
  const missing = migrations.filter((m) => !done.has(m.id))
  if (missing.length > 0) {
    throw new AppError(
      ErrorCode.DatabaseError,
      `database schema is missing migrations ${missing.map(fileName).join(', ')}: run \`observers migrate\` (npm run migrate, the Procfile's release phase) with a role that may create objects, then start the worker`,
    )
  }
  refuseBreaking(applied, migrations)
  const newer = unknownTo(applied, migrations)
  if (newer.length > 0) {
    log.warn(
      { migrations: newer.map(fileName) },
      `database has migrations newer than this worker: ${newer.map(fileName).join(', ')}; none breaking`,
    )
  }
}
