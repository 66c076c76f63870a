import type { Pool } from '../src/db/pool.ts'
import { distribution, round } from './stats.ts'

/** Where an event's commit → received time went, per stage, p50/p99 in ms. */
export interface Stages {
  /** Application commit → the dispatch transaction that enqueued its job began (NOTIFY, wake, claim). */
  dispatch: { p50: number; p99: number }
  /** → a runner fetched the job (dispatch commit, job NOTIFY, runner wake, fetch). */
  fetch: { p50: number; p99: number }
  /** → the receiver had the request (hold check, HTTP). */
  deliver: { p50: number; p99: number }
}

/**
 * Per-stage latency from timestamps pg-boss keeps anyway (a job's created_on is its dispatch
 * transaction's start, started_on its fetch), so measuring adds nothing to the pipeline. The
 * server and this process share the machine's wall clock; commits and arrivals are on the
 * performance clock, converted with its time origin.
 */
export async function pipelineStages(
  pool: Pool,
  commits: Map<number, number>,
  arrivals: Map<number, number>,
): Promise<Stages | undefined> {
  const { rows } = await pool.query<{ id: string; created: number; started: number | null }>(
    `select data->'event'->'after'->>'id' as id,
            extract(epoch from created_on) * 1000 as created,
            extract(epoch from started_on) * 1000 as started
       from pgboss.job
      where data->'event'->>'event' = 'INSERT' and retry_count = 0`,
  )
  const origin = performance.timeOrigin
  const dispatch: number[] = []
  const fetch: number[] = []
  const deliver: number[] = []
  for (const r of rows) {
    const id = Number(r.id)
    const committed = commits.get(id)
    const received = arrivals.get(id)
    if (committed === undefined || received === undefined || r.started === null) continue
    const created = Number(r.created) - origin
    const started = Number(r.started) - origin
    dispatch.push(created - committed)
    fetch.push(started - created)
    deliver.push(received - started)
  }
  if (dispatch.length === 0) return undefined
  const pick = (values: number[]) => {
    const d = distribution(values)
    return { p50: round(d.p50, 2), p99: round(d.p99, 2) }
  }
  return { dispatch: pick(dispatch), fetch: pick(fetch), deliver: pick(deliver) }
}
