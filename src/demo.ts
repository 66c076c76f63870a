import path from 'node:path'
import type { Queryable } from './db/pool.ts'
import { type LoadOptions, type LoadResult, loadObservers } from './observers/load.ts'

/**
 * The sample observer's folder. It is loaded only on the embedded database, where its table
 * exists; against your own database only your observers run.
 */
export const demoObserversDir = path.resolve(import.meta.dirname, '../demo')

/** The demo table of the sample observer (demo/demo-order-shipped.json). */
export async function createDemoTable(db: Queryable): Promise<void> {
  await db.query(`create table if not exists public.demo_orders (
    id serial primary key,
    customer_email text not null,
    total numeric(12, 2) not null,
    status text not null default 'pending',
    updated_at timestamptz not null default now())`)
}

/** `loaded` plus the sample observer, unless an observer of `loaded` already has its name. */
export async function withDemoObservers(loaded: LoadResult, opts: LoadOptions): Promise<LoadResult> {
  const demo = await loadObservers(demoObserversDir, opts)
  const names = new Set(loaded.observers.map((o) => o.name))
  return {
    observers: [...loaded.observers, ...demo.observers.filter((o) => !names.has(o.name))],
    problems: [...loaded.problems, ...demo.problems],
  }
}

export const demoInsertSql =
  "insert into demo_orders (customer_email, total, status) values ('ada@example.com', 129.90, 'shipped')"

export async function fireDemo(db: Queryable): Promise<void> {
  await db.query(demoInsertSql)
}
