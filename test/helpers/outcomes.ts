import assert from 'node:assert/strict'
import type { Pool } from '../../src/db/pool.ts'
import { eventually, type LogSink } from './worker.ts'

export interface DlqRow {
  id: string
  observer: string
  action_type: string
  delivery_id: string
  entity_id: string
  last_error: string
  last_error_code: string
  attempts: number
}

/** The observer's row in `observers.dlq` (for one entity_id, if given), once it is there. */
export function dlqRow(pool: Pool, observer: string, entityId?: string, timeoutMs = 60_000): Promise<DlqRow> {
  return eventually(
    async () => {
      const { rows } = await pool.query(
        'select * from observers.dlq where observer = $1 and ($2::text is null or entity_id = $2)',
        [observer, entityId ?? null],
      )
      return rows[0] as DlqRow | undefined
    },
    timeoutMs,
    `DLQ row for ${observer}`,
  )
}

/** What the destination answered on the observer's delivery (for one entity_id, if given), as recorded. */
export function completedOutput(pool: Pool, observer: string, entityId?: string, timeoutMs = 60_000) {
  return eventually(
    async () => {
      const { rows } = await pool.query(
        `select output from observers.deliveries
          where observer = $1 and outcome = 'delivered' and ($2::text is null or entity_id = $2)
            and output ? 'duration_ms'`,
        [observer, entityId ?? null],
      )
      return rows[0]?.output as Record<string, unknown> | undefined
    },
    timeoutMs,
    `delivered record for ${observer}`,
  )
}

/** The delivery_id of the observer's (first) job, as the dispatcher stored it. */
export async function deliveryIdOf(pool: Pool, observer: string): Promise<string> {
  const { rows } = await pool.query(
    `select data ->> 'delivery_id' as id from pgboss.job where data ->> 'observer' = $1 limit 1`,
    [observer],
  )
  assert.ok(rows[0]?.id, `a job of ${observer}`)
  return rows[0].id as string
}

export async function dlqCount(pool: Pool, observer: string): Promise<number> {
  const { rows } = await pool.query('select count(*)::int as n from observers.dlq where observer = $1', [
    observer,
  ])
  return rows[0].n as number
}

/**
 * No secret appears in any log line or anywhere in a job row (data, output, DLQ copies). With
 * `deliveriesOf`, the scan must also hold that observer's delivery log lines and jobs, so it
 * cannot pass on a log or a queue that holds nothing to leak.
 */
export async function assertNoSecrets(
  pool: Pool,
  logs: LogSink,
  secrets: string[],
  deliveriesOf?: string,
): Promise<void> {
  const { rows } = await pool.query(
    `select coalesce(string_agg(data::text || coalesce(output::text, ''), ' '), '') as text,
            count(*) filter (where data ->> 'observer' = $1)::int as scanned
       from pgboss.job`,
    [deliveriesOf ?? null],
  )
  const jobs = rows[0].text as string
  const lines = logs.lines.join('\n')
  if (deliveriesOf !== undefined) {
    const logged = logs.records.filter((r) => r.observer === deliveriesOf && r.outcome !== undefined)
    assert.ok(logged.length > 0, `the log holds delivery lines of ${deliveriesOf}`)
    assert.ok(rows[0].scanned > 0, `the job rows hold deliveries of ${deliveriesOf}`)
  }
  for (const secret of secrets) {
    assert.ok(secret.length > 0, 'a secret to look for')
    assert.ok(!lines.includes(secret), `secret ${secret.slice(0, 4)}… appears in the logs`)
    assert.ok(!jobs.includes(secret), `secret ${secret.slice(0, 4)}… appears in a job row`)
  }
}

/** The startup warning the worker logs for an action whose transport is not configured. */
export function missingTransportWarnings(logs: LogSink, observer: string): unknown[] {
  return logs.records.filter((r) => r.code === 'OB005' && r.observer === observer).map((r) => r.variable)
}
