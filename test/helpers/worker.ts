import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { loadConfig } from '../../src/config/config.ts'
import { createLogger } from '../../src/log/log.ts'
import { startWorker, type Worker } from '../../src/worker/worker.ts'
import { createTestDatabase, type TestDatabase } from './db.ts'

export interface LogSink {
  records: Array<Record<string, unknown>>
  lines: string[]
}

/** A pino destination that keeps every record, so tests assert on structured log lines. */
export function logSink(): { sink: LogSink; stream: Writable } {
  const sink: LogSink = { records: [], lines: [] }
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue
        sink.lines.push(line)
        sink.records.push(JSON.parse(line) as Record<string, unknown>)
      }
      done()
    },
  })
  return { sink, stream }
}

/** Writes observer files into a fresh temporary directory. */
export async function observersDir(files: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'observers-'))
  for (const [name, content] of Object.entries(files)) {
    await writeFile(
      path.join(dir, name),
      typeof content === 'string' ? content : JSON.stringify(content, null, 2),
    )
  }
  return dir
}

export interface TestWorker {
  worker: Worker
  logs: LogSink
  stop(): Promise<void>
}

/** Starts a worker in this process against `url` with the given observers directory and env. */
export async function runWorker(
  url: string,
  dir: string,
  env: Record<string, string> = {},
): Promise<TestWorker> {
  const config = loadConfig({
    DATABASE_URL: url,
    OBSERVERS_DIR: dir,
    PORT: '0',
    LOG_LEVEL: 'debug',
    OBSERVERS_DISPATCH_POLL_MS: '200',
    OBSERVERS_SHUTDOWN_GRACE_MS: '5000',
    // Test files run two at a time against one server: keep each worker's connections few.
    OBSERVERS_DB_POOL_SIZE: '4',
    OBSERVERS_CONCURRENCY: '8',
    ...env,
  })
  const { sink, stream } = logSink()
  const worker = await startWorker(config, { log: createLogger(config.logLevel, stream) })
  return { worker, logs: sink, stop: () => worker.stop() }
}

/** The error a worker fails to start with; a worker that starts is stopped again and fails the test. */
export async function startError(
  url: string,
  dir: string,
  env: Record<string, string> = {},
): Promise<Error & { code?: string }> {
  const started = await runWorker(url, dir, env).catch((err: unknown) => err)
  if (started instanceof Error) return started
  await (started as TestWorker).stop()
  throw new Error('the worker started')
}

/**
 * Starts a worker on a database of its own prepared by `setupSql`, so a test file's rows and jobs
 * meet no other file's; the database is dropped again if the worker fails to start.
 */
export async function startWorkerWithDatabase(
  setupSql: string,
  dir: string,
  env: Record<string, string> = {},
): Promise<{ db: TestDatabase; worker: TestWorker }> {
  const db = await createTestDatabase(setupSql)
  try {
    return { db, worker: await runWorker(db.url, dir, env) }
  } catch (err) {
    await db.drop()
    throw err
  }
}

export async function eventually<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
