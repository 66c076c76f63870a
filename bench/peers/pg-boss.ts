import pg from 'pg'
import { PgBoss } from 'pg-boss'
import { changeJson, dropTrigger, installTrigger, type Peer, postJson } from './peer.ts'

const trigger = 'peer_pg_boss'
const channel = 'bench_peer_pg_boss'
const queue = 'bench-deliver'
// Its own schema, so it never shares a job table with pg-observers' pg-boss.
const schema = 'bench_pgboss'
// 8 pollers of 4 jobs: the same 32 attempts in flight as pg-observers' default concurrency.
const work = { localConcurrency: 8, batchSize: 4, burstWhenBatchFull: true }

/**
 * A plain pg-boss pipeline, as an application would write it: a row trigger NOTIFYs the change,
 * a LISTEN handler `send`s it as a job, `work` POSTs it. Queue NOTIFY wakes the workers.
 */
export const peer: Peer = {
  name: 'pg-boss',
  async install(pool, databaseUrl) {
    const boss = new PgBoss({ connectionString: databaseUrl, schema, supervise: false, schedule: false })
    boss.on('error', () => {})
    await boss.start()
    await boss.createQueue(queue, { notify: true }).catch(() => {})
    await boss.stop({ graceful: false })
    await installTrigger(pool, trigger, `perform pg_notify('${channel}', ${changeJson}::text)`)
  },
  uninstall: (pool) => dropTrigger(pool, trigger),
  async run(databaseUrl, receiverUrl) {
    const boss = new PgBoss({ connectionString: databaseUrl, schema, useListenNotify: true })
    boss.on('error', (err) => console.error(err))
    await boss.start()
    await boss.work<unknown>(queue, work, async (jobs) => {
      await Promise.all(jobs.map((job) => postJson(receiverUrl, job.data)))
    })
    const listener = new pg.Client({ connectionString: databaseUrl })
    await listener.connect()
    const sender = sendInOrder(boss)
    listener.on('notification', (n) => {
      if (n.payload) sender(JSON.parse(n.payload) as object)
    })
    await listener.query(`listen ${channel}`)
    return {
      async stop() {
        await listener.end()
        await boss.stop({ graceful: true, timeout: 5000 })
      },
    }
  },
}

// Sends at once, as many as pg-boss's pool has connections; a failed send is retried, since a
// NOTIFY is not sent twice.
const sendsInFlight = 10

function sendInOrder(boss: PgBoss): (data: object) => void {
  const waiting: object[] = []
  let inFlight = 0
  const next = () => {
    const data = waiting.shift()
    if (data === undefined) return
    inFlight++
    boss
      .send(queue, data)
      .catch((err: unknown) => {
        console.error(err)
        waiting.unshift(data)
      })
      .finally(() => {
        inFlight--
        next()
      })
  }
  return (data) => {
    waiting.push(data)
    if (inFlight < sendsInFlight) next()
  }
}
