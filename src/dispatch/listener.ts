import pg from 'pg'
import { lockKeys, lockParts } from '../db/locks.ts'
import { coerceError, ErrorCode } from '../errors/errors.ts'
import type { Logger } from '../log/log.ts'

export const changeChannel = 'observers_change_log'
// Payloads of the NOTIFYs workers send each other: look at partition leadership again; a
// sleeping worker woke, so whoever slept on its lock must take it over.
const rebalancePayload = 'rebalance'
const awakePayload = 'awake'
const sleepLock = lockParts(lockKeys.sleep)

/**
 * A connection that stops answering without closing (a NAT or firewall dropping the flow, a
 * half-open socket) is found by this heartbeat, not by TCP: keepalive takes minutes at best.
 */
export interface HeartbeatOptions {
  /** @defaultValue 2000 */
  intervalMs: number
  /** @defaultValue 5000 */
  timeoutMs: number
}

const defaultHeartbeat: HeartbeatOptions = { intervalMs: 2_000, timeoutMs: 5_000 }
const firstBackoffMs = 250
const maxBackoffMs = 30_000

export interface Listener {
  readonly connected: boolean
  /** Why the listener is not connected, while it is not. */
  readonly problem: string | undefined
  /** This worker holds the leader lock: it runs the database-wide chores. */
  readonly leader: boolean
  /** Tries to take the leader lock; true when this process holds it. */
  tryLead(): Promise<boolean>
  /** True while this process holds the sleep lock, so every capturing commit notifies. */
  readonly asleep: boolean
  /**
   * True when every capturing commit from now on notifies: this process took the sleep lock (which
   * succeeds only when no capturing transaction that skipped its NOTIFY is in flight), or another
   * worker holds it. After one more pass the dispatcher may then wait for a NOTIFY.
   */
  trySleep(): Promise<boolean>
  /**
   * Releases the sleep lock: commits stop notifying while the dispatcher polls on its own. Workers
   * that slept on our lock are woken to take it over.
   */
  stayAwake(): Promise<void>
  /**
   * Counts each connection: session locks (leadership, partitions) of an earlier one are gone.
   * 0 while not connected.
   */
  readonly session: number
  /** A session advisory lock (two-int form) on this connection, without waiting. */
  tryLockPair(classKey: number, id: number, mode?: 'shared'): Promise<boolean>
  unlockPair(classKey: number, id: number): Promise<void>
  /**
   * Per second int of a two-int advisory lock class: how many sessions hold it and when the
   * longest-standing of them connected, in epoch seconds (null where not visible to our role).
   */
  holders(classKey: number): Promise<Array<{ id: number; sessions: number; oldest: number | null }>>
  /** True once after a worker asked all to look at their partitions again (see `announce`). */
  takeRebalance(): boolean
  /** Asks every worker, this one included, to look at partition leadership again now. */
  announce(): Promise<void>
  close(): Promise<void>
}

/** One connection attempt; events of a connection that was replaced reach only its own record. */
interface Connection {
  client: pg.Client
  /** The server session, so a successor can end it if it outlives our side of the socket. */
  session: { pid: number; startedAt: string } | undefined
  heartbeat: NodeJS.Timeout | undefined
}

/** Closes our side at once: a silent peer would keep `end()` waiting, and its queries pending. */
function destroy(client: pg.Client): void {
  client.end().catch(() => {})
  ;(client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy()
}

/** Up to `ms`, at least half of it, so workers that lost the database together come back spread out. */
function jittered(ms: number): number {
  return Math.round(ms / 2 + (Math.random() * ms) / 2)
}

/**
 * A dedicated connection that LISTENs for change-log wake-ups and holds the dispatcher's
 * advisory lock. A heartbeat replaces it when it stops answering; it reconnects with capped,
 * jittered exponential backoff; while it is down the dispatcher neither leads nor hears NOTIFYs,
 * and nothing is lost: rows wait in the log.
 */
export function startListener(
  url: string,
  log: Logger,
  onWake: () => void,
  heartbeat: HeartbeatOptions = defaultHeartbeat,
): Listener {
  let current: Connection | undefined
  let connected = false
  let problem: string | undefined = 'connecting'
  let leader = false
  let asleep = false
  let closed = false
  let session = 0
  let sessions = 0
  let rebalance = false
  let backoffMs = firstBackoffMs
  // Sessions of lost connections, ended by the next connection that gets through if the server
  // still has them. Kept until then: a reconnect that fails too has no session of its own, and
  // forgetting the older one would leave it holding the leadership and sleep locks for as long
  // as the server keeps a silent peer (its TCP keepalive: hours).
  const abandoned: Array<NonNullable<Connection['session']>> = []

  const drop = (conn: Connection, err: unknown) => {
    if (conn !== current) return
    current = undefined
    clearTimeout(conn.heartbeat)
    connected = false
    leader = false
    asleep = false
    session = 0
    if (conn.session) abandoned.push(conn.session)
    destroy(conn.client)
    if (closed) return
    const message = coerceError(err).message
    problem = `listener connection lost (${message}); reconnecting`
    const retryInMs = jittered(backoffMs)
    log.warn(
      { code: ErrorCode.ListenerConnectionFailed, error: message, retry_in_ms: retryInMs },
      `${ErrorCode.ListenerConnectionFailed}: listener connection lost`,
    )
    setTimeout(connect, retryInMs).unref()
    backoffMs = Math.min(backoffMs * 2, maxBackoffMs)
  }

  const beat = (conn: Connection) => {
    conn.heartbeat = setTimeout(async () => {
      if (conn !== current) return
      const timeout = new Promise<never>((_, reject) => {
        const t = setTimeout(
          () => reject(new Error(`no answer to the heartbeat within ${heartbeat.timeoutMs} ms`)),
          heartbeat.timeoutMs,
        )
        t.unref()
      })
      try {
        const { rows } = await Promise.race([
          conn.client.query<{ pid: number }>('select pg_backend_pid() as pid'),
          timeout,
        ])
        // Another backend answering means a transaction-mode pooler sits in between, which the
        // start-up probe can miss: LISTEN and the locks would then hold on nobody's session.
        if (conn.session && rows[0]?.pid !== conn.session.pid) {
          log.error(
            { code: ErrorCode.InvalidConfig },
            `${ErrorCode.InvalidConfig}: the listener's connection moved to another server session: a transaction-mode pooler sits in between; set DATABASE_DIRECT_URL to a direct connection to the database`,
          )
          throw new Error('the connection changed server session')
        }
        if (conn === current) beat(conn)
      } catch (err) {
        drop(conn, err)
      }
    }, heartbeat.intervalMs)
    conn.heartbeat.unref()
  }

  /**
   * Ends the sessions replaced connections left behind: the server may not have noticed the
   * silent peer, and such a session still holds the leadership, partition and sleep locks.
   */
  const endAbandoned = async (client: pg.Client) => {
    const sessions = abandoned.length
    if (sessions === 0) return
    await client.query(
      `select pg_terminate_backend(a.pid)
         from pg_stat_activity a
         join unnest($1::int[], $2::timestamptz[]) as s(pid, started_at)
           on a.pid = s.pid and a.backend_start = s.started_at
        where a.application_name = 'pg-observers-listener'`,
      [abandoned.map((s) => s.pid), abandoned.map((s) => s.startedAt)],
    )
    // Only those just ended: a session lost meanwhile was added behind them.
    abandoned.splice(0, sessions)
  }

  const connect = async () => {
    if (closed) return
    const client = new pg.Client({
      connectionString: url,
      application_name: 'pg-observers-listener',
      keepAlive: true,
      // Setting up and each lock query answer in milliseconds; a silent server must not hold them.
      connectionTimeoutMillis: heartbeat.timeoutMs,
      query_timeout: heartbeat.timeoutMs,
    })
    const conn: Connection = { client, session: undefined, heartbeat: undefined }
    current = conn
    client.on('error', (err) => drop(conn, err))
    client.on('end', () => drop(conn, new Error('connection ended')))
    client.on('notification', (n) => {
      if (conn !== current) return
      if (n.payload === rebalancePayload) rebalance = true
      onWake()
    })
    try {
      await client.connect()
      const { rows } = await client.query<{ pid: number; started_at: string }>(
        `select pid, backend_start::text as started_at from pg_stat_activity where pid = pg_backend_pid()`,
      )
      if (rows[0]) conn.session = { pid: rows[0].pid, startedAt: rows[0].started_at }
      await endAbandoned(client)
      await client.query(`listen ${changeChannel}`)
      if (conn !== current) return
      session = ++sessions
      rebalance = true
      connected = true
      problem = undefined
      backoffMs = firstBackoffMs
      beat(conn)
      log.info('listening for changes')
      onWake()
    } catch (err) {
      drop(conn, err)
    }
  }
  void connect()

  /** A query on this connection; undefined when it is not connected or the query fails (then it is replaced). */
  const ask = async <T extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<T | undefined> => {
    const conn = current
    if (!connected || !conn) return undefined
    try {
      const { rows } = await conn.client.query<T>(sql, params)
      return conn === current ? rows[0] : undefined
    } catch (err) {
      drop(conn, err)
      return undefined
    }
  }

  /** A session advisory lock on this connection, without waiting; false when the connection fails. */
  const tryLock = async (key: number): Promise<boolean> =>
    (await ask<{ ok: boolean }>('select pg_try_advisory_lock($1) as ok', [key]))?.ok === true

  /** Whether another session holds the sleep lock exclusively: its NOTIFYs reach us too. */
  const sleptByOther = async (): Promise<boolean> =>
    (
      await ask<{ held: boolean }>(
        `select exists (select 1 from pg_locks
                         where locktype = 'advisory' and mode = 'ExclusiveLock' and granted and objsubid = 1
                           and database = (select oid from pg_database where datname = current_database())
                           and classid = $1::oid and objid = $2::oid and pid <> pg_backend_pid()) as held`,
        [sleepLock.classid, sleepLock.objid],
      )
    )?.held === true

  return {
    get connected() {
      return connected
    },
    get problem() {
      return connected ? undefined : problem
    },
    get leader() {
      return leader
    },
    async tryLead() {
      if (leader) return leader
      leader = await tryLock(lockKeys.leader)
      if (leader) log.info('this worker is now the leader')
      return leader
    },
    get asleep() {
      return asleep
    },
    async trySleep() {
      if (!asleep) asleep = await tryLock(lockKeys.sleep)
      return asleep || (await sleptByOther())
    },
    async stayAwake() {
      if (!asleep) return
      asleep = false
      await ask('select pg_advisory_unlock($1), pg_notify($2, $3)', [
        lockKeys.sleep,
        changeChannel,
        awakePayload,
      ])
    },
    get session() {
      return connected ? session : 0
    },
    async tryLockPair(classKey, id, mode) {
      const fn = mode === 'shared' ? 'pg_try_advisory_lock_shared' : 'pg_try_advisory_lock'
      return (await ask<{ ok: boolean }>(`select ${fn}($1, $2) as ok`, [classKey, id]))?.ok === true
    },
    async unlockPair(classKey, id) {
      await ask('select pg_advisory_unlock($1, $2)', [classKey, id])
    },
    async holders(classKey) {
      const conn = current
      if (!connected || !conn) return []
      try {
        const { rows } = await conn.client.query<{ id: number; sessions: number; oldest: number | null }>(
          `select l.objid::bigint::int as id, count(*)::int as sessions,
                  extract(epoch from min(a.backend_start))::float8 as oldest
             from pg_locks l left join pg_stat_activity a using (pid)
            where l.locktype = 'advisory' and l.granted and l.objsubid = 2 and l.classid = $1::oid
              and l.database = (select oid from pg_database where datname = current_database())
            group by l.objid`,
          [classKey],
        )
        return rows
      } catch (err) {
        drop(conn, err)
        return []
      }
    },
    takeRebalance() {
      const due = rebalance
      rebalance = false
      return due
    },
    async announce() {
      await ask('select pg_notify($1, $2)', [changeChannel, rebalancePayload])
    },
    async close() {
      closed = true
      connected = false
      leader = false
      asleep = false
      const conn = current
      current = undefined
      if (!conn) return
      clearTimeout(conn.heartbeat)
      const ended = conn.client.end().catch(() => {})
      await Promise.race([ended, new Promise((r) => setTimeout(r, heartbeat.timeoutMs).unref())])
      destroy(conn.client)
    },
  }
}
