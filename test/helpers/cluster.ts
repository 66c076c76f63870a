import type { ChildProcess } from 'node:child_process'
import { listenPort } from './ports.ts'
import { assertDrains, spawnCli, waitUntilReady } from './process.ts'
import { observersDir } from './worker.ts'

export interface Cluster {
  workers: Array<ChildProcess & { output: string[] }>
  ports: number[]
  /** SIGTERMs every worker and asserts each drains and exits 0. */
  stop(): Promise<void>
}

/** Starts `size` worker processes on one database and observers directory, each ready before this returns. */
export async function startCluster(
  databaseUrl: string,
  files: Record<string, unknown>,
  size: number,
  env: Record<string, string> = {},
): Promise<Cluster> {
  const dir = await observersDir(files)
  const ports = await Promise.all(Array.from({ length: size }, () => listenPort()))
  const workers = ports.map((port) =>
    spawnCli(['start'], {
      DATABASE_URL: databaseUrl,
      OBSERVERS_DIR: dir,
      PORT: String(port),
      LOG_LEVEL: 'warn',
      OBSERVERS_DISPATCH_POLL_MS: '200',
      // The test server's connections are shared by every test running: keep each worker's few.
      OBSERVERS_DB_POOL_SIZE: '3',
      ...env,
    }),
  )
  const stop = async () => {
    await Promise.all(workers.filter((w) => w.exitCode === null).map((w) => assertDrains(w)))
  }
  try {
    await Promise.all(workers.map((w, i) => waitUntilReady(w, ports[i] as number)))
  } catch (err) {
    for (const w of workers) w.kill('SIGKILL')
    throw err
  }
  return { workers, ports, stop }
}
