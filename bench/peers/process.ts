import { spawn } from 'node:child_process'
import path from 'node:path'
import { probedProcess, probePath, type WorkerProcess } from '../worker.ts'

const childPath = path.join(import.meta.dirname, 'child.ts')

/** Starts a peer's consumer (bench/peers/<file>.ts) as a probed child; resolves once it runs. */
export async function spawnPeer(
  file: string,
  databaseUrl: string,
  receiverUrl: string,
): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', probePath, childPath, file], {
    env: { ...process.env, DATABASE_URL: databaseUrl, RECEIVER_URL: receiverUrl },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  const peer = probedProcess(child)
  const ready = new Promise<void>((resolve) => {
    const onMessage = (msg: unknown) => {
      if (msg !== 'ready') return
      child.off('message', onMessage)
      resolve()
    }
    child.on('message', onMessage)
  })
  await Promise.race([ready, peer.crashed])
  return peer
}
