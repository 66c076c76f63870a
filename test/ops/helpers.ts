import type { Pool } from '../../src/db/pool.ts'
import type { Worker } from '../../src/worker/worker.ts'
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
    60_000,
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
 * a lock held open on its change_pending row makes the claim's FOR UPDATE SKIP LOCKED pass it
 * by. The row is committed before it can be locked, so the dispatcher may take it in between;
 * then it is dispatched (it matches no observer) and another is tried. `release` lets the
 * dispatcher take it.
 */
export async function holdUndispatched(
  pool: Pool,
  ageSeconds: number,
): Promise<{ release(): Promise<void> }> {
  const holder = await pool.connect()
  await holder.query('begin')
  for (;;) {
    const { rows } = await pool.query<{ seq: string }>(
      `with change as (
         insert into observers.change_log (event, entity, entity_id, after, created_at)
         values ('INSERT', 'public.nowhere', '1', '{}', now() - $1::int * interval '1 second')
         returning seq)
       insert into observers.change_pending (seq) select seq from change returning seq`,
      [ageSeconds],
    )
    const locked = await holder.query(
      'select 1 from observers.change_pending where seq = $1 for key share skip locked',
      [rows[0]!.seq],
    )
    if (locked.rowCount === 1) break
  }
  return {
    async release() {
      await holder.query('rollback')
      holder.release()
    },
  }
}
