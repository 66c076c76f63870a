import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { AppError, ErrorCode } from '../errors.ts'
import { type Pool, withTransaction } from './pool.ts'

export const migrationsDir = fileURLToPath(new URL('../../migrations/', import.meta.url))

// Any constant shared by every migrator of this schema; keeps concurrent starts from racing.
const migrationLockKey = 7_311_902_114

interface Migration {
  id: number
  name: string
  file: string
}

async function listMigrations(): Promise<Migration[]> {
  const files = (await readdir(migrationsDir)).filter((f) => /^\d{4}_.+\.sql$/.test(f)).sort()
  return files.map((file) => ({ id: Number(file.slice(0, 4)), name: file.slice(5, -4), file }))
}

/**
 * Applies pending migrations, each in its own transaction under an advisory lock.
 * Returns the names applied. Refuses to run against a database migrated by newer code.
 */
export async function migrate(pool: Pool): Promise<string[]> {
  const migrations = await listMigrations()
  const applied: string[] = []
  for (const m of migrations) {
    const done = await withTransaction(pool, async (client) => {
      await client.query('select pg_advisory_xact_lock($1)', [migrationLockKey])
      await client.query('create schema if not exists observers')
      await client.query(`create table if not exists observers.migrations (
        id int primary key, name text not null, applied_at timestamptz not null default now())`)
      const { rows } = await client.query<{ max: number | null }>(
        'select max(id) as max from observers.migrations',
      )
      const latest = rows[0]?.max ?? 0
      const newest = migrations.at(-1)?.id ?? 0
      if (latest > newest) {
        throw new AppError(
          ErrorCode.DatabaseError,
          `database schema is at migration ${latest}, newer than this code knows (${newest}); upgrade pg-observers`,
        )
      }
      if (m.id <= latest) return false
      // Inserted first so a racing migrator fails on the primary key instead of applying twice.
      await client.query('insert into observers.migrations (id, name) values ($1, $2)', [m.id, m.name])
      await client.query(await readFile(path.join(migrationsDir, m.file), 'utf8'))
      return true
    })
    if (done) applied.push(m.file)
  }
  return applied
}
