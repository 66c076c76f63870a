import { ErrorCode } from '../errors/errors.ts'
import type { Outcome } from '../queue/boss.ts'
import { holdForBreaker, releaseBreaker } from '../queue/pgboss-sql.ts'
import type { Attempt } from '../queue/settle.ts'
import { controlChannel, type HoldDeps, startRefresher } from './refresher.ts'

/** Attempt verdicts that say the destination is unwell; a permanent refusal (a 4xx) does not. */
const destinationFailures = new Set<string>([
  ErrorCode.ActionFailedTransient,
  ErrorCode.RetriesExhausted,
  ErrorCode.ActionTimedOut,
])

export interface OpenBreaker {
  destination: string
  failures: number
  opened_at: string
}

export interface Breakers {
  /** Destinations open at the last read. */
  open(): readonly OpenBreaker[]
  /** Whether `destination` was open at the last read. */
  isOpen(destination: string): boolean
  /** Puts a fetched job back to wait while its destination is open, unless it goes as the probe. */
  hold(job: Attempt, destination: string): Promise<boolean>
  /** Counts a failed attempt, or closes the breaker on a success. */
  record(destination: string, outcome: Outcome): Promise<void>
  refresh(): Promise<void>
  stop(): Promise<void>
}

export interface BreakerOptions extends HoldDeps {
  /** Consecutive failures that open a destination; 0 turns breakers off. */
  failures: number
  probeMs: number
}

export async function startBreakers(o: BreakerOptions): Promise<Breakers> {
  // Every destination with a row (failing or open), so a success resets only where there is a count.
  let rows = new Map<string, { failures: number; opened_at: Date | null }>()
  const read = async () => {
    const { rows: found } = await o.pool.query<{
      destination: string
      failures: number
      opened_at: Date | null
    }>('select destination, failures, opened_at from observers.breakers')
    const next = new Map(found.map((r) => [r.destination, r]))
    const closed = [...rows].filter(([d, r]) => r.opened_at && !next.get(d)?.opened_at).map(([d]) => d)
    rows = next
    if (closed.length > 0) await release(closed)
  }
  const release = async (destinations: string[]) => {
    const { rows: jobs } = await o.statements.run(o.pool, releaseBreaker, [destinations])
    for (const queue of new Set(jobs.map((r: { name: string }) => r.name))) o.wake(queue)
  }
  const isOpen = (destination: string) => o.failures !== 0 && !!rows.get(destination)?.opened_at
  const refresher = await startRefresher(read, { ...o, what: 'the circuit breakers' })
  await refresher.refresh()

  const claimProbe = async (destination: string) => {
    const { rowCount } = await o.pool.query(
      `update observers.breakers set probe_at = now() + $2::int * interval '1 millisecond'
        where destination = $1 and opened_at is not null and probe_at <= now()`,
      [destination, o.probeMs],
    )
    return rowCount === 1
  }
  const fail = async (destination: string) => {
    const { rows: r } = await o.pool.query<{ opened: boolean }>(
      `insert into observers.breakers as b (destination, failures, opened_at, probe_at)
       values ($1, 1, case when $2::int <= 1 then now() end, now() + $3::int * interval '1 millisecond')
       on conflict (destination) do update
          set failures = b.failures + 1,
              opened_at = coalesce(b.opened_at, case when b.failures + 1 >= $2::int then now() end),
              probe_at = case when b.opened_at is null then excluded.probe_at else b.probe_at end
       returning opened_at is not null and failures = greatest($2::int, 1) as opened`,
      [destination, o.failures, o.probeMs],
    )
    if (r[0]?.opened) {
      o.log.warn({ destination, failures: o.failures }, `circuit breaker of ${destination} opened`)
      await o.pool.query(`select pg_notify($1, 'opened')`, [controlChannel])
    }
    await refresher.refresh()
  }
  const succeed = async (destination: string) => {
    const { rows: r } = await o.pool.query<{ opened_at: Date | null }>(
      'delete from observers.breakers where destination = $1 returning opened_at',
      [destination],
    )
    if (r[0]?.opened_at) {
      o.log.info({ destination }, `circuit breaker of ${destination} closed`)
      await o.pool.query(`select pg_notify($1, 'closed')`, [controlChannel])
    }
    await refresher.refresh()
  }

  return {
    open: () =>
      [...rows]
        .filter(([, r]) => r.opened_at)
        .map(([destination, r]) => ({
          destination,
          failures: r.failures,
          opened_at: (r.opened_at as Date).toISOString(),
        })),
    isOpen,
    async hold(job, destination) {
      if (!isOpen(destination)) return false
      if (await claimProbe(destination)) return false
      const { rows: held } = await o.statements.run(o.pool, holdForBreaker, [
        job.queue,
        job.id,
        job.retryCount,
        destination,
        o.retentionSeconds,
      ])
      return held.length === 1
    },
    async record(destination, outcome) {
      if (o.failures === 0) return
      if (outcome.kind === 'completed') {
        if (rows.has(destination)) await succeed(destination)
      } else if (outcome.kind !== 'requeue' && destinationFailures.has(outcome.record.code)) {
        await fail(destination)
      }
    },
    refresh: refresher.refresh,
    stop: refresher.stop,
  }
}
