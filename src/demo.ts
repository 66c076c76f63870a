import type { Queryable } from './db/pool.ts'

/**
 * The demo table of the sample observer (observers/demo-order-shipped.json). Created only on
 * the embedded database, so `npm start` on a fresh machine shows an observer firing.
 */
export async function createDemoTable(db: Queryable): Promise<void> {
  await db.query(`create table if not exists public.demo_orders (
    id serial primary key,
    customer_email text not null,
    total numeric(12, 2) not null,
    status text not null default 'pending',
    updated_at timestamptz not null default now())`)
}

export const demoInsertSql =
  "insert into demo_orders (customer_email, total, status) values ('ada@example.com', 129.90, 'shipped')"

export async function fireDemo(db: Queryable): Promise<void> {
  await db.query(demoInsertSql)
}
