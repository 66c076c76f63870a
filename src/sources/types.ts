import type { PoolClient, Queryable } from '../db/pool.ts'
import type { ClaimLimits, PartitionScope } from '../db/queries/change-log.ts'
import type { ErrorCode } from '../errors/errors.ts'
import type { ChangeEvent } from '../event/event.ts'

export type { ClaimLimits, PartitionScope }

export const SourceKinds = ['changelog', 'fraiseql', 'mysql'] as const
export type SourceKind = (typeof SourceKinds)[number]

/**
 * An event read from a source other than our own change log: the event of SPEC §5 plus where
 * it came from. `snapshot` marks a Debezium snapshot read (`op: "r"`), delivered as an INSERT.
 */
export interface SourceEvent extends ChangeEvent {
  source?: string
  metadata?: unknown
  snapshot?: true
}

/** An entry that cannot become an event; it is dead-lettered instead of stalling the rest. */
export interface MalformedEntry {
  /** The entry's key in its source (the change-log row's primary key). */
  key: string
  code: typeof ErrorCode.InvalidConfig | typeof ErrorCode.DatabaseError
  error: string
  entity: string | null
  entityId: string | null
  /** The entry as read, for whoever inspects the dead letter. */
  entry: Record<string, unknown>
}

/** One entry read from a source, turned into an event or found malformed. */
export type SourceEntry = {
  /** The entry's key in its source: what the ledger records. */
  key: string
  /** Source clock, UTC ISO-8601 with microseconds. */
  createdAt: string
} & ({ event: SourceEvent } | { malformed: MalformedEntry })

/** What one claim produced; `record` stores the progress in the dispatch transaction. */
export interface ClaimedBatch {
  events: SourceEvent[]
  malformed: MalformedEntry[]
  /** More entries may be ready now: dispatch again without waiting. */
  more: boolean
  record(client: PoolClient): Promise<void>
}

/** How far behind a source is, measured at the source. */
export interface SourceBacklog {
  /** Entries not yet dispatched. */
  backlog: number
  /** Age of the oldest of them; null when there are none. */
  oldestAgeSeconds: number | null
}

/**
 * Where the dispatcher takes changes from. `claim` runs inside the dispatcher's Postgres
 * transaction, together with the job inserts and `record`: if any of them fails, none of it
 * happened, so a crash never loses or doubles a change.
 */
export interface ChangeSource {
  readonly name: string
  readonly kind: SourceKind
  /**
   * `notify`: woken by LISTEN/NOTIFY, its partitions led through the listener's session locks;
   * `poll`: polled every pollMs, led by a transaction-scoped lock taken in its claim.
   */
  readonly wake: 'notify' | 'poll'
  readonly pollMs: number
  /**
   * Reads, before the dispatch transaction, what the next claim takes: a source on another server
   * is read there without a Postgres transaction waiting on it. Also refreshes its backlog figure.
   */
  read?(db: Queryable, limits: ClaimLimits): Promise<void>
  /**
   * Undefined when another worker holds this source's dispatch lock. A `notify` source claims
   * only from the partitions in `scope`.
   */
  claim(client: PoolClient, limits: ClaimLimits, scope?: PartitionScope): Promise<ClaimedBatch | undefined>
  backlog(db: Queryable): Promise<SourceBacklog>
  /** Periodic cleanup after a successful pass (pruning); errors are logged, never fatal. */
  tidy?(db: Queryable): Promise<void>
  close(): Promise<void>
}

/** Per-source health, for /metrics, /readyz and `observers status`. */
export interface SourceHealth {
  name: string
  kind: SourceKind
  /** Entries not yet dispatched; null when the source could not be measured (see lastError). */
  backlog: number | null
  /** Age in seconds of the oldest entry not yet dispatched; null when there is none. */
  lagSeconds: number | null
  /** backlog above the configured threshold (OBSERVERS_BACKLOG_WARN) */
  backlogWarning: boolean
  /** Failed dispatch passes / all passes over the last five minutes; null when unknown. */
  errorRate: number | null
  /** Failed passes and malformed entries since this process started. */
  errors: number
  malformed: number
  lastPassAt: string | null
  lastError: string | null
}

/** Which past entries of a source a replay reads: created in a time window, keys in a range, one entity. */
export interface HistoryWindow {
  since?: Date | undefined
  until?: Date | undefined
  /** Inclusive bounds on the entry key: the change log's seq, another source's key (the event's seq). */
  fromSeq?: number | undefined
  toSeq?: number | undefined
  entity?: string | undefined
}

/** One page of entries in key order; `read` counts entries that could not become events too. */
export interface HistoryPage {
  events: ChangeEvent[]
  read: number
  /** The key of the last entry read, to read the next page after it. */
  lastKey: string | undefined
}

/**
 * The entries a source keeps of past changes, read again for a replay: our change log within
 * OBSERVERS_RETENTION_DAYS, a FraiseQL log as long as it keeps them, a MySQL change-log table until
 * the worker prunes it. Events come out as the dispatcher made them, same ids, so same delivery ids.
 */
export interface History {
  readonly source: string
  page(afterKey: string | undefined, limit: number): Promise<HistoryPage>
  /** Entries in the window, for a progress bar. */
  count(): Promise<number>
  close(): Promise<void>
}
