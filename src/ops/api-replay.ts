import { actionTypes } from '../actions/registry.ts'
import { HttpError, InputError, RequestCode } from '../errors/errors.ts'
import { ensureQueues } from '../queue/boss.ts'
import { destinationName } from '../queue/policy.ts'
import { openHistory } from '../replay/history.ts'
import { replayChanges } from '../replay/replay.ts'
import { parseReplayRequest } from '../replay/request.ts'
import { readJson, sendJson } from './http.ts'
import type { RouteContext } from './types.ts'

function field(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key]
  if (v === undefined || v === null || v === '') return undefined
  if (typeof v === 'number' && key === 'seq') return String(v)
  if (typeof v !== 'string') throw new InputError(`${key} must be a string`)
  return v
}

function flag(body: Record<string, unknown>, key: string): boolean {
  const v = body[key]
  if (v !== undefined && typeof v !== 'boolean') {
    throw new InputError(`${key} must be true or false`)
  }
  return v === true
}

/** POST /api/replay: replays (or with dry_run, previews) a window of the change log. */
export async function replay({ req, res, worker, config }: RouteContext) {
  const body = await readJson(req)
  const { range, includeDelivered, dryRun } = parseReplayRequest({
    since: field(body, 'since'),
    until: field(body, 'until'),
    seq: field(body, 'seq'),
    source: field(body, 'source'),
    observer: field(body, 'observer'),
    entity: field(body, 'entity'),
    outcome: field(body, 'outcome'),
    includeDelivered: flag(body, 'include_delivered'),
    dryRun: flag(body, 'dry_run'),
  })
  const set = worker.current()
  const named = set.observers.find((o) => o.name === range.observer)
  if (range.observer !== undefined && named?.source !== range.source) {
    throw new HttpError(
      404,
      RequestCode.NotFound,
      named
        ? `observer "${range.observer}" reads source "${named.source}", not "${range.source}"`
        : `observer "${range.observer}" not found`,
    )
  }
  // An unknown source is OB001, answered 400.
  const history = openHistory(worker.pool, config, range.source, range)
  try {
    if (!dryRun) await ensureQueues(worker.queue, actionTypes.keys(), config.dlqRetentionDays)
    const result = await replayChanges(
      {
        pool: worker.pool,
        queue: worker.queue,
        matcher: set.matcher,
        history,
        destination: destinationName,
      },
      range,
      { includeDelivered, dryRun, batchSize: dryRun ? 5000 : 500 },
    )
    sendJson(res, 200, { dry_run: dryRun, ...result })
  } finally {
    await history.close()
  }
}
