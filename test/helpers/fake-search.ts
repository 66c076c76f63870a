import http from 'node:http'
import type { AddressInfo } from 'node:net'

/** A request as the fake search engine received it. */
export interface SearchRequest {
  method: string
  path: string
  query: URLSearchParams
  headers: http.IncomingHttpHeaders
  body: string
  at: number
}

interface Answer {
  status: number
  body?: unknown
  headers?: Record<string, string>
}

export interface MeiliTaskError {
  message: string
  code: string
  type: 'invalid_request' | 'internal' | 'auth' | 'system'
}

/**
 * A local server speaking the document APIs of Elasticsearch (PUT/DELETE /{index}/_doc/{id}) or
 * Meilisearch (POST /indexes/{index}/documents, DELETE /indexes/{index}/documents/{id}, and the
 * asynchronous task API, GET /tasks/{uid}), keeping documents in memory.
 */
export interface FakeSearch {
  url: string
  requests: SearchRequest[]
  /** index → id → document */
  indexes: Map<string, Map<string, unknown>>
  /** Answers the next requests with these instead of the API's own answers. */
  interrupt(answers: Answer[]): void
  /** Meilisearch: the next tasks fail with these errors. */
  failTasks(errors: MeiliTaskError[]): void
  close(): Promise<void>
}

type Handler = (req: SearchRequest, state: State) => Answer

interface State {
  indexes: Map<string, Map<string, unknown>>
  tasks: Map<number, { task: Record<string, unknown>; polls: number }>
  taskErrors: MeiliTaskError[]
}

/** JSON.parse that keeps numbers a double cannot hold as their digits, as an engine would store them. */
function parseDocument(text: string): unknown {
  const reviver = (_key: string, value: unknown, context?: { source?: string }) =>
    typeof value === 'number' && context?.source !== undefined && String(value) !== context.source
      ? context.source
      : value
  return JSON.parse(text, reviver as (key: string, value: unknown) => unknown)
}

function elastic(req: SearchRequest, { indexes }: State): Answer {
  const m = /\/([^/]+)\/_doc\/([^/]+)$/.exec(req.path)
  if (!m) return { status: 400, body: { error: { type: 'illegal_argument_exception' }, status: 400 } }
  const index = decodeURIComponent(m[1]!)
  const id = decodeURIComponent(m[2]!)
  const docs = indexes.get(index) ?? new Map<string, unknown>()
  indexes.set(index, docs)
  const base = { _index: index, _id: id, _version: 1 }
  if (req.method === 'DELETE') {
    if (!docs.delete(id)) return { status: 404, body: { ...base, result: 'not_found' } }
    return { status: 200, body: { ...base, result: 'deleted' } }
  }
  if (req.method !== 'PUT') return { status: 405, body: { error: 'method not allowed', status: 405 } }
  const existed = docs.has(id)
  docs.set(id, parseDocument(req.body))
  return { status: existed ? 200 : 201, body: { ...base, result: existed ? 'updated' : 'created' } }
}

function meili(req: SearchRequest, state: State): Answer {
  const task = /^\/tasks\/(\d+)$/.exec(req.path)
  if (task && req.method === 'GET') return pollTask(state, Number(task[1]))
  const docs = /^\/indexes\/([^/]+)\/documents(?:\/([^/]+))?$/.exec(req.path)
  if (!docs)
    return { status: 404, body: { message: 'not found', code: 'not_found', type: 'invalid_request' } }
  const index = decodeURIComponent(docs[1]!)
  if (req.method === 'POST' && !docs[2]) {
    const pk = req.query.get('primaryKey') ?? 'id'
    const batch = parseDocument(req.body) as Array<Record<string, unknown>>
    return enqueue(state, index, 'documentAdditionOrUpdate', () => {
      const missing = batch.find((d) => d[pk] === undefined)
      if (missing) return taskError('missing_document_id', `Document doesn't have a \`${pk}\` attribute`)
      const target = state.indexes.get(index) ?? new Map<string, unknown>()
      state.indexes.set(index, target)
      for (const d of batch) target.set(String(d[pk]), d)
      return undefined
    })
  }
  if (req.method === 'DELETE' && docs[2]) {
    const id = decodeURIComponent(docs[2])
    return enqueue(state, index, 'documentDeletion', () => {
      const target = state.indexes.get(index)
      if (!target) return taskError('index_not_found', `Index \`${index}\` not found.`)
      target.delete(id)
      return undefined
    })
  }
  return {
    status: 405,
    body: { message: 'method not allowed', code: 'bad_request', type: 'invalid_request' },
  }
}

function taskError(code: string, message: string): MeiliTaskError {
  return { code, message, type: 'invalid_request' }
}

/** Runs the write at once but reports it like Meilisearch: enqueued, then processing, then done. */
function enqueue(state: State, index: string, type: string, apply: () => MeiliTaskError | undefined): Answer {
  const uid = state.tasks.size
  const error = state.taskErrors.shift() ?? apply()
  const task = { uid, indexUid: index, type, status: error ? 'failed' : 'succeeded', error: error ?? null }
  state.tasks.set(uid, { task, polls: 0 })
  return {
    status: 202,
    body: { taskUid: uid, indexUid: index, status: 'enqueued', type, enqueuedAt: new Date().toISOString() },
  }
}

function pollTask(state: State, uid: number): Answer {
  const entry = state.tasks.get(uid)
  if (!entry) return { status: 404, body: { message: `Task \`${uid}\` not found.`, code: 'task_not_found' } }
  entry.polls++
  if (entry.polls === 1) return { status: 200, body: { ...entry.task, status: 'enqueued', error: null } }
  if (entry.polls === 2) return { status: 200, body: { ...entry.task, status: 'processing', error: null } }
  return { status: 200, body: entry.task }
}

async function startFake(handler: Handler): Promise<FakeSearch> {
  const state: State = { indexes: new Map(), tasks: new Map(), taskErrors: [] }
  const requests: SearchRequest[] = []
  let interruptions: Answer[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake')
      const r: SearchRequest = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      }
      requests.push(r)
      const answer = interruptions.shift() ?? handler(r, state)
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers })
      res.end(answer.body === undefined ? '' : JSON.stringify(answer.body))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    indexes: state.indexes,
    interrupt(answers) {
      interruptions = [...answers]
    },
    failTasks(errors) {
      state.taskErrors = [...errors]
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

export const startFakeElasticsearch = (): Promise<FakeSearch> => startFake(elastic)
export const startFakeMeilisearch = (): Promise<FakeSearch> => startFake(meili)
