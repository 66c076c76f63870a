import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Config } from '../config/config.ts'
import type { Breakers } from '../control/breaker.ts'
import type { PauseState } from '../control/pause.ts'
import type { Pool } from '../db/pool.ts'
import type { Matcher } from '../dispatch/match.ts'
import type { ObserverFileError } from '../errors/errors.ts'
import type { Logger } from '../log/log.ts'
import type { Observer } from '../observers/types.ts'
import type { Queue } from '../queue/boss.ts'
import type { Telemetry } from '../report/telemetry.ts'
import type { SourceHealth } from '../sources/types.ts'
import type { BacklogHistory } from './backlog-history.ts'
import type { Sessions } from './sessions.ts'

/** The observers running now, as the ops surface reports them. */
export interface ObserverView {
  readonly observers: readonly Observer[]
  readonly problems: readonly ObserverFileError[]
  /** Matches changes to the observers' actions: replay and backfill plan with it. */
  readonly matcher: Matcher
  readonly loadedAt: Date
}

/**
 * What the ops surface reads and drives in the process it serves: the worker satisfies it, and
 * ops depends on nothing else of the worker, so the worker can change without touching ops.
 */
export interface OpsTarget {
  /** The database pool the DLQ and readiness queries run on. */
  readonly pool: Pool
  /** The job queue that replay, fire and backfill enqueue on. */
  readonly queue: Queue
  readonly telemetry: Telemetry
  /** Paused observers and actions, cluster-wide. */
  readonly pause: PauseState
  /** Open circuit breakers, cluster-wide. */
  readonly breakers: Breakers
  readonly dispatcher: {
    readonly listener: { readonly connected: boolean; readonly problem: string | undefined }
    health(): Promise<SourceHealth[]>
  }
  current(): ObserverView
  reload(): Promise<{ applied: boolean; set: ObserverView; problems: readonly ObserverFileError[] }>
  /** The problems of the last reload when it was rejected; empty once a reload applies. */
  reloadProblems(): readonly ObserverFileError[]
}

/** What the console adds to the ops server: sign-in sessions and the backlog chart's samples. */
export interface ConsoleState {
  sessions: Sessions
  history: BacklogHistory
}

export interface RouteContext {
  req: IncomingMessage
  res: ServerResponse
  url: URL
  /** the path's captured segments, in order */
  params: string[]
  worker: OpsTarget
  config: Config
  log: Logger
  console: ConsoleState
}
