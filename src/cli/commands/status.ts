import type { Command } from 'commander'
import type { Config } from '../../config/config.ts'
import type { Pool } from '../../db/pool.ts'
import { backlog } from '../../db/queries/change-log.ts'
import { connections, countDeadLetters, queueSizes } from '../../queue/stats.ts'
import { configuredSourceHealth } from '../../sources/index.ts'
import { withPool } from '../context.ts'
import { newTable, printJson } from './dlq.ts'
import { printTable } from './table.ts'

async function gather(pool: Pool, config: Config) {
  const [log, dlq, queues, conns, sources, breakers] = await Promise.all([
    backlog(pool),
    countDeadLetters(pool),
    queueSizes(pool),
    connections(pool),
    configuredSourceHealth(pool, config),
    pool.query<{ destination: string; failures: number; opened_at: Date }>(
      'select destination, failures, opened_at from observers.breakers where opened_at is not null order by destination',
    ),
  ])
  const age = log.oldestAgeSeconds === null ? null : Math.round(log.oldestAgeSeconds * 10) / 10
  return {
    backlog: {
      undispatched: log.undispatched,
      oldest_age_seconds: age,
      keeping_up: log.undispatched <= config.backlogWarn && (age ?? 0) <= config.lagWarnSeconds,
    },
    dlq_size: dlq,
    workers: conns.workers,
    queue_connections: conns.queueConnections,
    dispatcher_leader: conns.dispatcherLeader,
    queues,
    // Other change sources (docs/sources.md); our own change log is the backlog above.
    sources: sources.filter((h) => h.kind !== 'changelog'),
    open_breakers: breakers.rows.map((b) => ({
      destination: b.destination,
      failures: b.failures,
      opened_at: b.opened_at.toISOString(),
    })),
  }
}

type Status = Awaited<ReturnType<typeof gather>>

function print(s: Status, config: Config): void {
  const summary = newTable()
  const lag =
    s.backlog.oldest_age_seconds === null ? 'none waiting' : `oldest ${s.backlog.oldest_age_seconds} s`
  summary.push(
    { 'change log': `${s.backlog.undispatched} undispatched, ${lag}` },
    {
      'keeping up': s.backlog.keeping_up
        ? 'yes'
        : `NO (warn above ${config.backlogWarn} rows or ${config.lagWarnSeconds} s)`,
    },
    { 'dead letters': s.dlq_size },
    {
      workers: `${s.workers} running, dispatcher ${s.dispatcher_leader ? 'active' : 'NOT RUNNING'}, ${s.queue_connections} queue connection(s)`,
    },
  )
  console.log(summary.toString())
  const busy = s.queues.filter((q) => q.created + q.retry + q.active + q.failed > 0)
  if (busy.length > 0) {
    printTable(
      ['queue', 'waiting', 'retrying', 'active', 'failed (retained)'],
      busy.map((q) => [q.queue, q.created, q.retry, q.active, q.failed]),
    )
  }
  console.log(`${s.queues.length - busy.length} of ${s.queues.length} queue(s) empty`)
  if (s.open_breakers.length > 0) {
    const open = newTable({ head: ['open circuit breaker', 'failures in a row', 'open since'] })
    for (const b of s.open_breakers) open.push([b.destination, b.failures, b.opened_at])
    console.log(open.toString())
  }
  if (s.sources.length === 0) return
  printTable(
    ['source', 'kind', 'backlog', 'oldest (s)', 'warning', 'last error'],
    s.sources.map((h) => [
      h.name,
      h.kind,
      h.backlog ?? 'unreachable',
      h.lagSeconds === null ? '-' : Math.round(h.lagSeconds),
      h.backlogWarning ? `above ${config.backlogWarn}` : '',
      h.lastError ?? '',
    ]),
  )
}

export function register(program: Command): void {
  program
    .command('status')
    .description('is it keeping up: change-log backlog and lag, queue sizes, dead letters, workers')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      await withPool(async (pool, config) => {
        const status = await gather(pool, config)
        if (opts.json) printJson(status)
        else print(status, config)
      })
    })
}
