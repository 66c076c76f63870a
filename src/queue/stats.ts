import { lockKeys, lockParts } from '../db/locks.ts'
import type { Queryable } from '../db/pool.ts'
import { bossSchema, dlqQueue } from './boss.ts'

/** Jobs of one queue by state; completed jobs are not counted (they are history, not work). */
export interface QueueSize {
  queue: string
  /** waiting to run */
  created: number
  /** waiting for their next attempt */
  retry: number
  active: number
  /**
   * failed for good and still retained (a failed strict-FIFO job holds its key), not counting
   * deliveries a later job (DLQ retry, replay) has since delivered: observers.retry_exhausted
   */
  failed: number
}

export async function queueSizes(db: Queryable): Promise<QueueSize[]> {
  const { rows } = await db.query<QueueSize>(
    `select q.name as queue,
            count(j.id) filter (where j.state = 'created')::int as created,
            count(j.id) filter (where j.state = 'retry')::int as retry,
            count(j.id) filter (where j.state = 'active')::int as active,
            (select count(*)::int from observers.retry_exhausted r where r.queue = q.name) as failed
       from ${bossSchema}.queue q
       left join ${bossSchema}.job j
         on j.name = q.name and j.state in ('created', 'retry', 'active')
      where q.name like 'observers.%' and q.name <> $1
      group by q.name order by q.name`,
    [dlqQueue],
  )
  return rows
}

export interface Connections {
  /** worker processes: each holds one listener connection */
  workers: number
  /** pg-boss pool connections of workers and CLI commands */
  queueConnections: number
  /** whether some worker holds the dispatcher lock */
  dispatcherLeader: boolean
}

const leaderLock = lockParts(lockKeys.leader)

/** Live connections by application_name (set by src/dispatch/listener.ts and src/queue/boss.ts). */
export async function connections(db: Queryable): Promise<Connections> {
  const { rows } = await db.query<{ workers: number; queue: number; leader: boolean }>(
    `select count(*) filter (where application_name = 'pg-observers-listener')::int as workers,
            count(*) filter (where application_name = 'pg-observers-queue')::int as queue,
            exists (select 1 from pg_locks
                     where locktype = 'advisory' and granted
                       and database = (select oid from pg_database where datname = current_database())
                       and classid::bigint = $1::bigint and objid::bigint = $2::bigint) as leader
       from pg_stat_activity where datname = current_database()`,
    [leaderLock.classid, leaderLock.objid],
  )
  const r = rows[0]
  return { workers: r?.workers ?? 0, queueConnections: r?.queue ?? 0, dispatcherLeader: r?.leader ?? false }
}

/** Dead letters waiting in the DLQ. */
export async function countDeadLetters(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `select count(*)::int as n from ${bossSchema}.job where name = $1 and state = 'created'`,
    [dlqQueue],
  )
  return rows[0]?.n ?? 0
}

export async function countDeadLettersByObserver(db: Queryable): Promise<Map<string, number>> {
  const { rows } = await db.query<{ observer: string; n: number }>(
    `select data ->> 'observer' as observer, count(*)::int as n
       from ${bossSchema}.job where name = $1 and state = 'created' group by 1`,
    [dlqQueue],
  )
  return new Map(rows.map((r) => [r.observer, r.n]))
}

/** One observer's jobs waiting or running, cluster-wide; `held` counts those put back by pause, breaker or rate limit. */
export interface ObserverJobs {
  created: number
  retry: number
  active: number
  held: { paused: number; breaker: number; rate_limit: number }
}

export async function observerJobs(db: Queryable, observer: string): Promise<ObserverJobs> {
  const { rows } = await db.query<{
    created: number
    retry: number
    active: number
    held: ObserverJobs['held']
  }>(
    `select count(*) filter (where state = 'created')::int as created,
            count(*) filter (where state = 'retry')::int as retry,
            count(*) filter (where state = 'active')::int as active,
            jsonb_build_object(
              'paused', count(*) filter (where output ->> 'held' = 'paused'),
              'breaker', count(*) filter (where output ->> 'held' = 'breaker'),
              'rate_limit', count(*) filter (where output ->> 'held' = 'rate_limit')) as held
       from ${bossSchema}.job
      where name like 'observers.%' and name <> $1
        and state in ('created', 'retry', 'active') and data ->> 'observer' = $2`,
    [dlqQueue, observer],
  )
  const r = rows[0]
  return {
    created: r?.created ?? 0,
    retry: r?.retry ?? 0,
    active: r?.active ?? 0,
    held: r?.held ?? { paused: 0, breaker: 0, rate_limit: 0 },
  }
}
