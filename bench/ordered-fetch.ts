/**
 * One fetch from an ordered queue holding N waiting jobs, pg-boss's strict-FIFO fetch against
 * ours (src/queue/pgboss-sql.ts fetchOrdered), each rolled back so every run sees the same queue.
 *
 *   node --import tsx bench/ordered-fetch.ts <database url> [N,N…] [hot]
 *
 * The database is emptied of that queue's jobs and filled with N jobs of distinct keys (VACUUM ANALYZEd);
 * with `hot`, one key's N jobs come first, its head active, ahead of 1 000 other keys.
 */
import { performance } from 'node:perf_hooks'
import pg from 'pg'
import { statements } from '../src/db/statements.ts'
import { createLogger } from '../src/log/log.ts'
import { adapter, ensureQueues, groupTiers, type Queue, queueName, startQueue } from '../src/queue/boss.ts'
import { fetchOrderedJobs } from '../src/queue/runner.ts'
import { distribution } from './stats.ts'

const queue = queueName('webhook', 'ordered')
const runs = 7
const batches = [1, 16, 64]

async function fill(boss: Queue, pool: pg.Pool, n: number, hot: boolean) {
  await pool.query('delete from pgboss.job where name = $1', [queue])
  const keyOf = (i: number) => (hot ? (i < n ? 'hot' : `k${i}`) : `k${i}`)
  const total = hot ? n + 1000 : n
  for (let i = 0; i < total; i += 1000) {
    const jobs = Array.from({ length: Math.min(1000, total - i) }, (_, k) => ({
      data: { delivery_id: `d${i + k}`, attempts: [], event: { note: 'x'.repeat(300) } },
      singletonKey: keyOf(i + k),
      retryLimit: 5,
    }))
    await boss.insert(queue, jobs)
  }
  if (hot) await boss.fetch(queue, { batchSize: 1 })
  await pool.query('vacuum (analyze) pgboss.job_common')
}

/** Times `fetch`; the runner turns JIT off for our statement only (src/queue/runner.ts). */
async function timed(pool: pg.Pool, fetch: (client: pg.PoolClient) => Promise<unknown[]>, jitOff: boolean) {
  const client = await pool.connect()
  try {
    await client.query('begin')
    if (jitOff) await client.query("select set_config('jit', 'off', true)")
    const started = performance.now()
    const jobs = await fetch(client)
    return { ms: performance.now() - started, taken: jobs.length }
  } finally {
    await client.query('rollback')
    client.release()
  }
}

async function main() {
  const [url, sizes = '10000,100000', mode] = process.argv.slice(2)
  if (!url) throw new Error('usage: bench/ordered-fetch.ts <database url> [N,N…] [hot]')
  const boss = await startQueue(url, { log: createLogger('silent'), poolSize: 2, supervise: false })
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  const run = statements(true)
  try {
    await ensureQueues(boss, ['webhook'], 30)
    for (const n of sizes.split(',').map(Number)) {
      await fill(boss, pool, n, mode === 'hot')
      for (const batchSize of batches) {
        const fetchers = {
          'pg-boss': (c: pg.PoolClient) =>
            boss.fetch(queue, {
              batchSize,
              groupConcurrency: { default: 1e6, tiers: groupTiers },
              db: adapter(c),
            }),
          ours: (c: pg.PoolClient) => fetchOrderedJobs(boss, run, c, queue, batchSize),
        }
        for (const [name, fetch] of Object.entries(fetchers)) {
          const samples = []
          for (let i = 0; i < runs; i++) samples.push(await timed(pool, fetch, name === 'ours'))
          const ms = distribution(samples.map((s) => s.ms))
          console.log(
            `${mode === 'hot' ? 'hot ' : ''}N=${n} batch=${batchSize} ${name}: median ${ms.p50.toFixed(1)} ms (min ${ms.min.toFixed(1)}, max ${ms.max.toFixed(1)}), took ${samples[0]?.taken}`,
          )
        }
      }
    }
  } finally {
    await pool.end()
    await boss.stop({ graceful: false, close: true })
  }
}

await main()
