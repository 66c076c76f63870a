import { setTimeout as delay } from 'node:timers/promises'
import pg from 'pg'
import { benchTable } from './database.ts'

/** What a load run committed: per row id, performance.now() right after its COMMIT returned. */
export interface LoadResult {
  commits: Map<number, number>
  firstCommitAt: number
  lastCommitAt: number
  startedAt: number
  /** Transactions that started later than their slot (offered-rate runs only). */
  lateStarts: number
}

// Autocommit: each insert is its own transaction, so the promise resolves once COMMIT has returned.
const insertRow = {
  name: 'bench-insert-row',
  text: `insert into ${benchTable} (account_id, status, amount, note) values ($1, $2, $3, $4) returning id`,
}
const statuses = ['new', 'paid', 'shipped', 'cancelled']

function rowValues(i: number): unknown[] {
  return [i % 1000, statuses[i % statuses.length], ((i * 7919) % 100_000) / 100, `order ${i}`]
}

export interface LoadClients {
  clients: pg.Client[]
  close(): Promise<void>
}

export async function connectClients(url: string, count: number): Promise<LoadClients> {
  const clients = await Promise.all(
    Array.from({ length: count }, async () => {
      const c = new pg.Client({ connectionString: url, application_name: 'pg-observers-bench-load' })
      await c.connect()
      return c
    }),
  )
  return { clients, close: async () => void (await Promise.all(clients.map((c) => c.end()))) }
}

async function insertOne(client: pg.Client, i: number, commits: Map<number, number>) {
  const { rows } = await client.query<{ id: string }>({ ...insertRow, values: rowValues(i) })
  const at = performance.now()
  commits.set(Number(rows[0]?.id), at)
  return at
}

function summary(commits: Map<number, number>, startedAt: number, lateStarts: number): LoadResult {
  let firstCommitAt = Number.POSITIVE_INFINITY
  let lastCommitAt = 0
  for (const at of commits.values()) {
    firstCommitAt = Math.min(firstCommitAt, at)
    lastCommitAt = Math.max(lastCommitAt, at)
  }
  return { commits, startedAt, firstCommitAt, lastCommitAt, lateStarts }
}

/** Closed loop: `count` single-row transactions as fast as the clients can commit them. */
export async function insertAsFastAsPossible(load: LoadClients, count: number): Promise<LoadResult> {
  const commits = new Map<number, number>()
  let next = 0
  const startedAt = performance.now()
  await Promise.all(
    load.clients.map(async (client) => {
      while (next < count) await insertOne(client, next++, commits)
    }),
  )
  return summary(commits, startedAt, 0)
}

/**
 * Open loop: transaction i is due at start + i/rate. A client that falls behind starts the next
 * due transaction at once (counted in lateStarts) rather than skipping it.
 */
export async function insertAtRate(load: LoadClients, rate: number, seconds: number): Promise<LoadResult> {
  const count = Math.round(rate * seconds)
  const intervalMs = 1000 / rate
  const commits = new Map<number, number>()
  let next = 0
  let lateStarts = 0
  const startedAt = performance.now()
  await Promise.all(
    load.clients.map(async (client) => {
      while (next < count) {
        const i = next++
        const wait = startedAt + i * intervalMs - performance.now()
        if (wait >= 1) await delay(wait)
        else if (wait < -intervalMs) lateStarts++
        await insertOne(client, i, commits)
      }
    }),
  )
  return summary(commits, startedAt, lateStarts)
}

/** Many rows per statement, for filling a backlog quickly: `count` changes in `count / perStatement` transactions. */
export async function insertInBatches(url: string, count: number, perStatement = 1000): Promise<void> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    for (let done = 0; done < count; done += perStatement) {
      await c.query(
        `insert into ${benchTable} (account_id, status, amount, note)
         select g % 1000, 'new', (g % 100000) / 100.0, 'order ' || g from generate_series($1::int, $2::int) g`,
        [done, Math.min(count, done + perStatement) - 1],
      )
    }
  } finally {
    await c.end()
  }
}
