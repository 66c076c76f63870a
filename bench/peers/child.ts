/**
 * A peer's consumer as its own process (`node --import tsx --import bench/probe.ts
 * bench/peers/child.ts <peer file>`), so its CPU is measured apart: says `ready` over IPC once
 * it runs, stops on SIGTERM.
 */
import type { Peer } from './peer.ts'

const [file] = process.argv.slice(2)
const databaseUrl = process.env.DATABASE_URL
const receiverUrl = process.env.RECEIVER_URL
if (!file || !databaseUrl || !receiverUrl)
  throw new Error('usage: child.ts <peer> with DATABASE_URL, RECEIVER_URL')
const { peer } = (await import(`./${file}.ts`)) as { peer: Peer }
const running = await peer.run(databaseUrl, receiverUrl)
process.once('SIGTERM', () => {
  running.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err)
      process.exit(1)
    },
  )
})
process.send?.('ready')
