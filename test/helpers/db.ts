import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { createPool, type Pool } from '../../src/db/pool.ts'

export interface TestDatabase {
  url: string
  pool: Pool
  drop(): Promise<void>
}

function adminUrl(): string {
  const url = process.env.TEST_DATABASE_URL
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run the suite with `npm test`')
  return url
}

export function databaseUrl(name: string): string {
  const u = new URL(adminUrl())
  u.pathname = `/${name}`
  return u.toString()
}

/**
 * A fresh, migrated database cloned from the suite's template (see test/run.ts), prepared by
 * `setupSql` when given; a failing `setupSql` drops the database again.
 */
export async function createTestDatabase(setupSql?: string): Promise<TestDatabase> {
  const template = process.env.TEST_TEMPLATE_DB ?? 'observers_test_template'
  const name = `observers_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: adminUrl() })
  await admin.connect()
  await admin.query(`create database ${name} template ${template}`)
  await admin.end()
  const url = databaseUrl(name)
  const pool = createPool(url, { max: 4 })
  const db: TestDatabase = {
    url,
    pool,
    async drop() {
      await pool.end()
      const a = new pg.Client({ connectionString: adminUrl() })
      await a.connect()
      await a.query(`drop database if exists ${name} with (force)`)
      await a.end()
    },
  }
  if (setupSql) {
    try {
      await pool.query(setupSql)
    } catch (err) {
      await db.drop()
      throw err
    }
  }
  return db
}
