import { fireRow, observerNamed } from '../backfill/fire.ts'
import { AppError, ErrorCode, HttpError, InputError } from '../errors/errors.ts'
import { notFound, readJson, sendJson } from './http.ts'
import type { RouteContext } from './types.ts'

/** POST /api/observers/:name/fire {row, force?}: one row's current state, delivered now. */
export async function fireObserver({ req, res, params, worker }: RouteContext) {
  const body = await readJson(req)
  const row = typeof body.row === 'number' || typeof body.row === 'string' ? String(body.row) : undefined
  const key = Array.isArray(body.row) ? JSON.stringify(body.row) : row
  if (key === undefined) {
    throw new InputError('row must be the primary key: a value, or an array for a composite key')
  }
  if (body.force !== undefined && typeof body.force !== 'boolean') {
    throw new InputError('force must be true or false')
  }
  const name = params[0] ?? ''
  if (!worker.current().observers.some((o) => o.name === name)) throw notFound(`observer "${name}"`)
  try {
    const result = await fireRow(worker, observerNamed(worker.current().observers, name), key, {
      force: body.force === true,
    })
    sendJson(res, 202, result)
  } catch (err) {
    // The condition is false for the row: the request was understood, and refused.
    if (err instanceof AppError && err.code === ErrorCode.NoMatchingObservers) {
      throw new HttpError(422, err.code, err.message, { cause: err })
    }
    throw err
  }
}
