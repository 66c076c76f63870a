import { actionTypes } from '../actions/registry.ts'
import { backfillDefaults, createBackfill, runBackfill } from '../backfill/backfill.ts'
import { getBackfill, listBackfills, setBackfillState } from '../db/queries/backfills.ts'
import { AppError, coerceError, ErrorCode, HttpError, InputError, RequestCode } from '../errors/errors.ts'
import { ensureQueues } from '../queue/boss.ts'
import { notFound, readJson, sendJson } from './http.ts'
import type { RouteContext } from './types.ts'

function integer(
  body: Record<string, unknown>,
  key: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const v = body[key]
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InputError(`${key} must be an integer from ${min} to ${max}`)
  }
  return v
}

function names(v: unknown): string[] {
  if (v === undefined) return []
  if (!Array.isArray(v) || !v.every((n) => typeof n === 'string')) {
    throw new InputError('observers must be an array of observer names')
  }
  return v
}

/** Runs a backfill in this process; its state row tells how far it got, and why it ended. */
async function start(ctx: RouteContext, id: number): Promise<void> {
  const { worker, config, log } = ctx
  await ensureQueues(worker.queue, actionTypes.keys(), config.dlqRetentionDays)
  runBackfill(worker, id, worker.current().observers).then(
    (s) => log.info({ backfill: id, state: s.state, rows: s.rows_done }, `backfill ${id} ${s.state}`),
    (err: unknown) =>
      log.error(
        { backfill: id, code: ErrorCode.DatabaseError, error: coerceError(err).message },
        `backfill ${id} failed`,
      ),
  )
}

/** POST /api/backfills {table, where?, observers?, page_size?, pause_ms?}: starts a backfill. */
export async function createBackfillRoute(ctx: RouteContext) {
  const body = await readJson(ctx.req)
  if (typeof body.table !== 'string' || body.table === '') {
    throw new InputError('table must name a table')
  }
  if (body.where !== undefined && typeof body.where !== 'string') {
    throw new InputError('where must be an SQL condition')
  }
  const request = {
    table: body.table,
    where: body.where || undefined,
    observers: names(body.observers),
    pageSize: integer(body, 'page_size', backfillDefaults.pageSize, 1, 100_000),
    pauseMs: integer(body, 'pause_ms', backfillDefaults.pauseMs, 0, 60_000),
  }
  const state = await createBackfill(ctx.worker.pool, ctx.worker.current().observers, request).catch(
    (err: unknown) => {
      // No observer to deliver through: understood, and refused.
      if (err instanceof AppError && err.code === ErrorCode.NoMatchingObservers) {
        throw new HttpError(422, err.code, err.message, { cause: err })
      }
      throw err
    },
  )
  await start(ctx, state.id)
  sendJson(ctx.res, 202, state)
}

export async function listBackfillsRoute({ res, worker }: RouteContext) {
  sendJson(res, 200, { backfills: await listBackfills(worker.pool) })
}

async function found(ctx: RouteContext) {
  const id = Number(ctx.params[0])
  const state = Number.isSafeInteger(id) ? await getBackfill(ctx.worker.pool, id) : undefined
  if (!state) throw notFound(`backfill ${ctx.params[0]}`)
  return state
}

export async function showBackfill(ctx: RouteContext) {
  sendJson(ctx.res, 200, await found(ctx))
}

/** Stops at the end of the page in flight; the position is kept for a resume. */
export async function stopBackfill(ctx: RouteContext) {
  const state = await found(ctx)
  sendJson(ctx.res, 200, await setBackfillState(ctx.worker.pool, state.id, 'stopped', null))
}

export async function resumeBackfill(ctx: RouteContext) {
  const state = await found(ctx)
  if (state.state === 'done') throw new HttpError(409, RequestCode.Conflict, `backfill ${state.id} is done`)
  await start(ctx, state.id)
  sendJson(ctx.res, 202, await found(ctx))
}
