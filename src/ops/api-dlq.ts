import { AppError, coerceError, ErrorCode, HttpError, InputError } from '../errors/errors.ts'
import {
  countDeadLetters,
  getDeadLetter,
  isValidCursor,
  listDeadLetters,
  purgeDeadLetters,
  retryDeadLetters,
} from '../queue/dlq.ts'
import { type DlqFilterInput, narrows, parseDlqFilter, parsePositiveInt } from './filters.ts'
import { notFound, readJson, sendJson } from './http.ts'
import { renderRequest } from './rendered-request.ts'
import type { RouteContext } from './types.ts'

const defaultLimit = 50
const maxLimit = 500

function filterFrom(source: Record<string, unknown>): DlqFilterInput {
  const text = (k: string) => {
    const v = source[k]
    if (v === undefined || v === null || v === '') return undefined
    if (typeof v !== 'string') throw new InputError(`${k} must be a string`)
    return v
  }
  return {
    observer: text('observer'),
    type: text('type'),
    entity: text('entity'),
    since: text('since'),
    until: text('until'),
    code: text('code'),
  }
}

/** DLQ operations touch pg-boss's tables; their failures carry OB012. */
async function dlqOperation<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    const e = coerceError(err)
    if (e instanceof AppError || e instanceof HttpError) throw e
    throw new AppError(ErrorCode.DeadLetterQueueError, `dead-letter queue operation failed: ${e.message}`, {
      cause: err,
    })
  }
}

/** The dead letters of one delivery, which the live feed names by its delivery_id. */
async function deadLetterIdsOf(worker: RouteContext['worker'], deliveryId: string): Promise<string[]> {
  if (deliveryId.includes('\u0000')) throw new InputError('invalid delivery_id')
  const { rows } = await dlqOperation(() =>
    worker.pool.query<{ id: string }>('select id from observers.dlq where delivery_id = $1', [deliveryId]),
  )
  return rows.map((r) => r.id)
}

export async function listDlq({ url, res, worker }: RouteContext) {
  const q = Object.fromEntries(url.searchParams)
  const filter = parseDlqFilter(filterFrom(q))
  const limit = q.limit ? parsePositiveInt(q.limit, 'limit', maxLimit) : defaultLimit
  if (q.cursor && !isValidCursor(q.cursor)) throw new InputError('invalid cursor')
  const ids = q.delivery_id ? await deadLetterIdsOf(worker, q.delivery_id) : undefined
  const page = await dlqOperation(() =>
    listDeadLetters(worker.pool, { ...filter, ids }, { limit, cursor: q.cursor }),
  )
  sendJson(res, 200, { items: page.items, next_cursor: page.nextCursor })
}

/** One dead letter with the request its last attempt sent, rendered again with secrets redacted. */
export async function showDlq({ res, worker, params, config, log }: RouteContext) {
  const item = await dlqOperation(() => getDeadLetter(worker.pool, params[0] ?? ''))
  if (!item) throw notFound('dead letter')
  // A source entry that never became an event has no action to render.
  const request =
    item.observer === null
      ? null
      : renderRequest(item.delivery, Math.max(1, item.attempt_history.length), {
          config,
          log,
          observers: worker.current().observers,
        })
  sendJson(res, 200, { ...item, request })
}

export async function retryOneDlq({ res, worker, params, log }: RouteContext) {
  const id = params[0] ?? ''
  const jobIds = await dlqOperation(() => retryDeadLetters(worker.pool, { ids: [id] }))
  if (jobIds.length === 0) throw notFound('dead letter')
  log.info({ dlq_id: id, job_id: jobIds[0] }, 'dead letter retried')
  sendJson(res, 200, { retried: 1, job_ids: jobIds })
}

export async function retryManyDlq({ req, url, res, worker, log }: RouteContext) {
  const body = await readJson(req)
  const filter = parseDlqFilter(filterFrom({ ...Object.fromEntries(url.searchParams), ...body }))
  const jobIds = await dlqOperation(() => retryDeadLetters(worker.pool, filter))
  log.info({ retried: jobIds.length, filter }, `retried ${jobIds.length} dead letter(s)`)
  sendJson(res, 200, { retried: jobIds.length })
}

export async function deleteDlq({ res, worker, params, log }: RouteContext) {
  const id = params[0] ?? ''
  const deleted = await dlqOperation(() => purgeDeadLetters(worker.pool, { ids: [id] }))
  if (deleted === 0) throw notFound('dead letter')
  log.info({ dlq_id: id }, 'dead letter deleted')
  sendJson(res, 200, { deleted })
}

/**
 * Deletes every dead letter the filter selects; `dry_run` only counts them, for a confirm step.
 * An empty filter selects the whole DLQ and needs `all: true`, as the CLI needs --yes.
 */
export async function purgeMatchingDlq({ req, url, res, worker, log }: RouteContext) {
  const body = await readJson(req)
  const filter = parseDlqFilter(filterFrom({ ...Object.fromEntries(url.searchParams), ...body }))
  if (!narrows(filter) && body.all !== true) {
    throw new HttpError(400, ErrorCode.InvalidConfig, 'purging every dead letter needs "all": true')
  }
  if (body.dry_run === true) {
    sendJson(res, 200, { matched: await dlqOperation(() => countDeadLetters(worker.pool, filter)) })
    return
  }
  const deleted = await dlqOperation(() => purgeDeadLetters(worker.pool, filter))
  log.info({ deleted, filter }, `purged ${deleted} dead letter(s)`)
  sendJson(res, 200, { deleted })
}
