import path from 'node:path'
import type { Queryable } from '../db/pool.ts'
import { type LoadOptions, type LoadResult, loadObservers } from '../observers/load.ts'

/**
 * The sample observer's folder. It is loaded only on the embedded database, where its table
 * exists; against your own database only your observers run.
 */
export const demoObserversDir = path.resolve(import.meta.dirname, '../../demo')

const demoOrderId = 1

/**
 * The demo table of the sample observer (demo/demo-order-shipped.json). Its sequence starts past
 * the demo order's id, which each start inserts again (`fireDemo`).
 */
export async function createDemoTable(db: Queryable): Promise<void> {
  await db.query(`create table if not exists public.demo_orders (
    id serial primary key,
    customer_email text not null,
    total numeric(12, 2) not null,
    status text not null default 'pending',
    updated_at timestamptz not null default now())`)
  await db.query(
    `select setval(pg_get_serial_sequence('public.demo_orders', 'id'), greatest(${demoOrderId}, (select max(id) from public.demo_orders)))`,
  )
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

/**
 * Inserts the demo order, replacing the one an earlier start inserted, so every start logs the
 * same line: the README's "Order 1 shipped to ada@example.com (total 129.90) via INSERT".
 */
export async function fireDemo(db: Queryable): Promise<void> {
  await db.query('delete from public.demo_orders where id = $1', [demoOrderId])
  await db.query(
    "insert into public.demo_orders (id, customer_email, total, status) values ($1, 'ada@example.com', 129.90, 'shipped')",
    [demoOrderId],
  )
}
