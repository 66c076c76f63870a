import { readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import pg from 'pg'
import type { Config } from '../config/config.ts'
import { coerceError } from '../errors/errors.ts'
import { type EmbeddedDatabase, freePort, startEmbedded } from './embedded.ts'

/** The embedded server listens here when the port is free, so the README's psql line works. */
export const embeddedPreferredPort = 54329

export interface Database {
  url: string
  /** For LISTEN and session advisory locks: DATABASE_DIRECT_URL when set, else `url`. */
  directUrl: string
  embedded: EmbeddedDatabase | undefined
  close(): Promise<void>
}

function stateFile(config: Config): string {
  return path.join(path.dirname(config.embeddedDataDir), 'embedded.json')
}

async function portIsFree(port: number): Promise<boolean> {
  const net = await import('node:net')
  return new Promise((resolve) => {
    const s = net.createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

/** DATABASE_URL when set; otherwise an embedded Postgres this process starts and stops. */
export async function openDatabase(
  config: Config,
  onNotice: (msg: string) => void = () => {},
): Promise<Database> {
  if (config.databaseUrl) {
    const directUrl = config.databaseDirectUrl ?? config.databaseUrl
    return { url: config.databaseUrl, directUrl, embedded: undefined, close: async () => {} }
  }
  const preferred = await portIsFree(embeddedPreferredPort)
  const start = async (port: number) => startEmbedded(config.embeddedDataDir, { port, onNotice })
  const embedded = await start(preferred ? embeddedPreferredPort : await freePort()).catch(
    async (e: unknown) => {
      // Another server (a second `npm start` beside this one) took the port between the check and
      // the start: any free port serves.
      if (!preferred || !/Address already in use/.test(coerceError(e).message)) throw e
      return start(await freePort())
    },
  )
  await writeFile(stateFile(config), JSON.stringify({ url: embedded.url, pid: process.pid }))
  return {
    url: embedded.url,
    directUrl: embedded.url,
    embedded,
    async close() {
      await rm(stateFile(config), { force: true })
      await embedded.stop()
    },
  }
}

/**
 * For CLI commands: DATABASE_URL, or the embedded server a running `npm start` announced.
 * Undefined when neither exists.
 */
export async function findDatabaseUrl(config: Config): Promise<string | undefined> {
  if (config.databaseUrl) return config.databaseUrl
  try {
    const state = JSON.parse(await readFile(stateFile(config), 'utf8')) as { url: string; pid: number }
    process.kill(state.pid, 0)
    return state.url
  } catch {
    return undefined
  }
}

/**
 * True when connections to `url` share server sessions, as through a transaction-mode pooler
 * (PgBouncer's `pool_mode = transaction`, most managed poolers): a second connection is handed
 * the backend the first just used, or the first lands on another backend while the second holds
 * a transaction open. A direct connection keeps one backend per connection, so this never
 * mistakes one for a pooler; a session-mode pooler is not one either.
 */
export async function sharesSessions(url: string): Promise<boolean> {
  const open = async () => {
    const c = new pg.Client({ connectionString: url, application_name: 'pg-observers-probe' })
    c.on('error', () => {})
    await c.connect()
    return c
  }
  const backend = async (c: pg.Client) =>
    (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid
  const first = await open()
  let second: pg.Client | undefined
  try {
    const pid = await backend(first)
    second = await open()
    await second.query('begin')
    if ((await backend(second)) === pid) return true
    return (await backend(first)) !== pid
  } finally {
    await second?.end().catch(() => {})
    await first.end().catch(() => {})
  }
}
