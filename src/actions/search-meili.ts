import { setTimeout as sleep } from 'node:timers/promises'
import { ActionError } from '../errors/errors.ts'
import { stringifyExact } from '../json/exact.ts'
import { assertOk, excerpt, sendHttp } from './http.ts'
import type { SearchOperation, SearchOutcome } from './search-elastic.ts'
import { type SearchEndpoint, searchUrl } from './search-endpoint.ts'

interface MeiliTask {
  uid?: number
  status?: string
  error?: { message?: string; code?: string; type?: string } | null
}

const firstPollMs = 25
const maxPollMs = 500

/**
 * Meilisearch accepts writes as asynchronous tasks (202 + taskUid); the delivery succeeds only
 * once the task has succeeded, so the task is polled until it finishes or the time limit aborts.
 */
export async function applyMeili(
  endpoint: SearchEndpoint,
  op: SearchOperation & { primaryKey: string },
): Promise<SearchOutcome> {
  const what = `meilisearch ${op.operation} ${op.index}/${op.id}`
  const res =
    op.operation === 'delete'
      ? await sendHttp({
          url: searchUrl(endpoint, ['indexes', op.index, 'documents', op.id]),
          method: 'DELETE',
          headers: endpoint.headers,
          signal: op.signal,
        })
      : await sendHttp({
          url: searchUrl(endpoint, ['indexes', op.index, 'documents'], { primaryKey: op.primaryKey }),
          method: 'POST',
          headers: { ...endpoint.headers, 'content-type': 'application/json' },
          body: stringifyExact([op.document]),
          signal: op.signal,
        })
  assertOk(res, what)
  const taskUid = taskUidOf(res.body, what)
  const task = await waitForTask(endpoint, taskUid, op.signal)
  if (task.status !== 'succeeded') {
    // Deleting from an index that does not exist leaves nothing to delete.
    if (op.operation === 'delete' && task.error?.code === 'index_not_found') {
      return { status: res.status, detail: { task_uid: taskUid, result: 'not_found' } }
    }
    throw taskFailure(task, taskUid, what)
  }
  return { status: res.status, detail: { task_uid: taskUid, result: task.status } }
}

function parseBody(body: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(body)
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

function taskUidOf(body: string, what: string): number {
  const parsed = parseBody(body)
  const uid = parsed?.taskUid ?? parsed?.uid
  if (typeof uid === 'number') return uid
  throw new ActionError(`${what}: response carries no taskUid: ${excerpt(body)}`, { retryable: false })
}

async function waitForTask(endpoint: SearchEndpoint, uid: number, signal: AbortSignal): Promise<MeiliTask> {
  const url = searchUrl(endpoint, ['tasks', String(uid)])
  for (let delayMs = firstPollMs; ; delayMs = Math.min(delayMs * 2, maxPollMs)) {
    const res = await sendHttp({ url, method: 'GET', headers: endpoint.headers, signal })
    assertOk(res, `meilisearch task ${uid}`)
    const task = parseBody(res.body) as MeiliTask | undefined
    if (!task) {
      throw new ActionError(`meilisearch task ${uid}: unreadable answer: ${excerpt(res.body)}`, {
        retryable: true,
      })
    }
    if (task.status === 'succeeded' || task.status === 'failed' || task.status === 'canceled') return task
    await sleep(delayMs, undefined, { signal }).catch(() => {
      throw signal.reason
    })
  }
}

/** A failed task is permanent unless Meilisearch blames itself (error type internal or system). */
function taskFailure(task: MeiliTask, uid: number, what: string): ActionError {
  if (task.status === 'canceled') {
    return new ActionError(`${what}: task ${uid} was canceled`, { retryable: true })
  }
  const type = task.error?.type ?? 'unknown'
  const detail = `${task.error?.code ?? 'error'} (${type}): ${task.error?.message ?? 'no message'}`
  return new ActionError(`${what}: task ${uid} failed: ${excerpt(detail)}`, {
    retryable: type === 'internal' || type === 'system',
  })
}
