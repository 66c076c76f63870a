import { run, runMigrations } from 'graphile-worker'
import { changeJson, dropTrigger, installTrigger, type Peer, postJson } from './peer.ts'

const trigger = 'peer_graphile_worker'
// The same number of attempts in flight as pg-observers' default OBSERVERS_CONCURRENCY.
const concurrency = 32

/** graphile-worker: a row trigger calls graphile_worker.add_job, a task POSTs the change. */
export const peer: Peer = {
  name: 'graphile-worker',
  async install(pool, databaseUrl) {
    await runMigrations({ connectionString: databaseUrl })
    await installTrigger(pool, trigger, `perform graphile_worker.add_job('deliver', (${changeJson})::json)`)
  },
  uninstall: (pool) => dropTrigger(pool, trigger),
  async run(databaseUrl, receiverUrl) {
    const runner = await run({
      connectionString: databaseUrl,
      concurrency,
      noHandleSignals: true,
      taskList: { deliver: (payload) => postJson(receiverUrl, payload) },
    })
    return { stop: () => runner.stop() }
  },
}
