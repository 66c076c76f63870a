import { readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Config } from '../config.ts'
import { type EmbeddedDatabase, freePort, startEmbedded } from './embedded.ts'

/** The embedded server listens here when the port is free, so the README's psql line works. */
export const embeddedPreferredPort = 54329

export interface Database {
  url: string
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
  if (config.databaseUrl) return { url: config.databaseUrl, embedded: undefined, close: async () => {} }
  const port = (await portIsFree(embeddedPreferredPort)) ? embeddedPreferredPort : await freePort()
  const embedded = await startEmbedded(config.embeddedDataDir, { port, onNotice })
  await writeFile(stateFile(config), JSON.stringify({ url: embedded.url, pid: process.pid }))
  return {
    url: embedded.url,
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
