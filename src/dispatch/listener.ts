import pg from 'pg'
import { coerceError, ErrorCode } from '../errors.ts'
import type { Logger } from '../log.ts'

export const changeChannel = 'observers_change_log'
// Held on the listening connection: leadership ends when that connection does.
const leaderLockKey = 7_311_902_115
// Held exclusively by the leader while it sleeps; the capture trigger notifies only then
// (migrations/0004_dispatch_queue.sql names the same key).
const sleepLockKey = 7_311_902_116

export interface Listener {
  readonly connected: boolean
  readonly leader: boolean
  /** Tries to become the one dispatcher; true when this process is it. */
  tryLead(): Promise<boolean>
  /** True while this process holds the sleep lock, so every capturing commit notifies it. */
  readonly asleep: boolean
  /**
   * Takes the sleep lock, which succeeds only when no capturing transaction that skipped its
   * NOTIFY is in flight; after one more pass the dispatcher may then wait for a NOTIFY.
   */
  trySleep(): Promise<boolean>
  /** Releases the sleep lock: commits stop notifying while the dispatcher polls on its own. */
  stayAwake(): Promise<void>
  close(): Promise<void>
}

/**
 * A dedicated connection that LISTENs for change-log wake-ups and holds the dispatcher's
 * advisory lock. It reconnects with capped exponential backoff; while it is down the
 * dispatcher neither leads nor hears NOTIFYs, and nothing is lost: rows wait in the log.
 */
export function startListener(url: string, log: Logger, onWake: () => void): Listener {
  let client: pg.Client | undefined
  let connected = false
  let leader = false
  let asleep = false
  let closed = false
  let backoffMs = 250

  const drop = (err: unknown) => {
    if (!connected && !client) return
    connected = false
    leader = false
    asleep = false
    const old = client
    client = undefined
    old?.end().catch(() => {})
    if (closed) return
    log.warn(
      { code: ErrorCode.ListenerConnectionFailed, error: coerceError(err).message, retry_in_ms: backoffMs },
      `${ErrorCode.ListenerConnectionFailed}: listener connection lost`,
    )
    setTimeout(connect, backoffMs).unref()
    backoffMs = Math.min(backoffMs * 2, 30_000)
  }

  const connect = async () => {
    if (closed) return
    const c = new pg.Client({
      connectionString: url,
      application_name: 'pg-observers-listener',
      keepAlive: true,
    })
    client = c
    c.on('error', drop)
    c.on('end', () => drop(new Error('connection ended')))
    c.on('notification', () => onWake())
    try {
      await c.connect()
      await c.query(`listen ${changeChannel}`)
      connected = true
      backoffMs = 250
      log.info('listening for changes')
      onWake()
    } catch (err) {
      drop(err)
    }
  }
  void connect()

  /** A session advisory lock on this connection, without waiting; false when the connection fails. */
  const tryLock = async (key: number): Promise<boolean> => {
    if (!connected || !client) return false
    try {
      const { rows } = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1) as ok', [key])
      return rows[0]?.ok === true
    } catch (err) {
      drop(err)
      return false
    }
  }

  return {
    get connected() {
      return connected
    },
    get leader() {
      return leader
    },
    async tryLead() {
      if (leader) return leader
      leader = await tryLock(leaderLockKey)
      if (leader) log.info('this worker is now the dispatcher')
      return leader
    },
    get asleep() {
      return asleep
    },
    async trySleep() {
      if (!asleep) asleep = await tryLock(sleepLockKey)
      return asleep
    },
    async stayAwake() {
      if (!asleep || !client) return
      asleep = false
      await client.query('select pg_advisory_unlock($1)', [sleepLockKey]).catch(drop)
    },
    async close() {
      closed = true
      connected = false
      leader = false
      asleep = false
      await client?.end().catch(() => {})
    },
  }
}
