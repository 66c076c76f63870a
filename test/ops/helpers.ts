import type { Pool } from '../../src/db/pool.ts'
import type { Worker } from '../../src/worker.ts'
import { eventually } from '../helpers/worker.ts'

export interface ApiResponse {
  status: number
  headers: Headers
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON bodies
  body: any
}

/** Calls the worker's ops server; JSON bodies in and out. */
export async function api(
  worker: Worker,
  path: string,
  init: { method?: string; token?: string; body?: unknown } = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = {}
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`http://127.0.0.1:${worker.ops?.port}${path}`, {
    method: init.method ?? 'GET',
    headers,
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  })
  const text = await res.text()
  const json = res.headers.get('content-type')?.includes('json')
  return { status: res.status, headers: res.headers, body: json ? JSON.parse(text) : text }
}

/** Waits until `observer` has `count` dead letters; returns their ids, oldest first. */
export async function deadLetters(pool: Pool, observer: string, count = 1): Promise<string[]> {
  return eventually(
    async () => {
      const { rows } = await pool.query<{ id: string }>(
        'select id from observers.dlq where observer = $1 order by failed_at, id',
        [observer],
      )
      return rows.length >= count ? rows.map((r) => r.id) : undefined
    },
    20_000,
    `${count} dead letter(s) of ${observer}`,
  )
}

/** A webhook observer on `entity` that gives up after one attempt, so failures dead-letter at once. */
export function hookObserver(name: string, entity: string, url: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    entity,
    events: ['INSERT', 'UPDATE'],
    actions: [{ type: 'webhook', url }],
    retry: { max_attempts: 1 },
    ...extra,
  }
}

/**
 * Leaves one committed, undispatched change `ageSeconds` old that the dispatcher cannot claim:
 * a KEY SHARE lock held open conflicts with its FOR UPDATE SKIP LOCKED, but not with the UPDATE
 * that marks the row undispatched. `release` lets the dispatcher take it.
 */
export async function holdUndispatched(
  pool: Pool,
  ageSeconds: number,
): Promise<{ release(): Promise<void> }> {
  const { rows } = await pool.query<{ seq: string }>(
    `insert into observers.change_log (event, entity, entity_id, after, created_at, dispatched_at)
     values ('INSERT', 'public.nowhere', '1', '{}', now() - $1::int * interval '1 second', now())
     returning seq`,
    [ageSeconds],
  )
  const seq = rows[0]!.seq
  const holder = await pool.connect()
  await holder.query('begin')
  await holder.query('select 1 from observers.change_log where seq = $1 for key share', [seq])
  await pool.query('update observers.change_log set dispatched_at = null where seq = $1', [seq])
  return {
    async release() {
      await holder.query('rollback')
      holder.release()
    },
  }
}
