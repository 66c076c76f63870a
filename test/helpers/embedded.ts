import { rm } from 'node:fs/promises'
import path from 'node:path'
import { type EmbeddedDatabase, freePort, startEmbedded } from '../../src/db/embedded.ts'

/**
 * A Postgres server owned by one test file, so the test can stop and restart it under a
 * running worker. Data lives in `.data/faults-<pid>` and is removed by `destroy()`.
 */
export interface OwnedPostgres {
  readonly url: string
  readonly port: number
  readonly running: boolean
  stop(): Promise<void>
  /** Starts the same cluster again, on the same port. */
  start(): Promise<void>
  destroy(): Promise<void>
}

const root = path.resolve(import.meta.dirname, '../..')

export async function ownPostgres(): Promise<OwnedPostgres> {
  const dataDir = path.join(root, '.data', `faults-${process.pid}`, 'postgres')
  await rm(path.dirname(dataDir), { recursive: true, force: true })
  const port = await freePort()
  let server: EmbeddedDatabase | undefined = await startEmbedded(dataDir, { port })
  const url = server.url
  return {
    url,
    port,
    get running() {
      return server !== undefined
    },
    async stop() {
      await server?.stop()
      server = undefined
    },
    async start() {
      server ??= await startEmbedded(dataDir, { port })
    },
    async destroy() {
      await server?.stop()
      server = undefined
      await rm(path.dirname(dataDir), { recursive: true, force: true })
    },
  }
}
