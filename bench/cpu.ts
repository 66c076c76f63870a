import { availableParallelism } from 'node:os'
import { busyShare, machineCpu, processCpuMs, serverCpuMs } from './proc.ts'
import { round } from './stats.ts'

/** Where the CPU went during a measured interval, in µs per event, by process. */
export interface CpuSplit {
  postgresUsPerEvent: number | null
  workerUsPerEvent: number | null
  /** This process: load generator and receiver. */
  benchUsPerEvent: number
  /** Share of all CPUs busy (every process on the machine), 0..1. */
  machineBusy: number | null
  /**
   * Share of all CPUs used by processes other than these three, 0..1: a large value means
   * something else on the machine competed with the measurement, and its rates are noisy.
   */
  othersBusy: number | null
}

/**
 * Starts measuring. Postgres is measured only when it runs on this machine (its postmaster
 * is visible in /proc); the worker only when there is one.
 */
export function startCpuMeter(postmasterPid: number | undefined, workerPid: number | undefined) {
  const pg0 = postmasterPid ? serverCpuMs(postmasterPid) : 0
  const worker0 = workerPid ? processCpuMs(workerPid) : 0
  const bench0 = process.cpuUsage()
  const machine0 = machineCpu()
  const started = performance.now()
  return (events: number): CpuSplit => {
    const per = (ms: number) => round((ms * 1000) / events, 0)
    const capacityMs = (performance.now() - started) * availableParallelism()
    const bench = process.cpuUsage(bench0)
    const busy = busyShare(machine0, machineCpu())
    const pgMs = postmasterPid ? serverCpuMs(postmasterPid) - pg0 : 0
    const workerMs = workerPid ? processCpuMs(workerPid) - worker0 : 0
    const benchMs = (bench.user + bench.system) / 1000
    const others = busy === undefined ? undefined : busy - (pgMs + workerMs + benchMs) / capacityMs
    return {
      postgresUsPerEvent: postmasterPid ? per(pgMs) : null,
      workerUsPerEvent: workerPid ? per(workerMs) : null,
      benchUsPerEvent: per(benchMs),
      machineBusy: busy === undefined ? null : round(busy, 3),
      othersBusy: others === undefined || !postmasterPid ? null : round(Math.max(0, others), 3),
    }
  }
}

/** CPU of one core used while nothing happens, in percent, by process. */
export interface IdleCost {
  postgresPercent: number | null
  workerPercent: number
  workerStatementsPerSecond: number
  /** The statements the idle worker sent most often, per second. */
  topStatements: Array<{ sql: string; perSecond: number }>
}

/**
 * Watches an idle worker for `seconds`: polling, maintenance and listeners cost this much even
 * with no changes to deliver. Grows with the number of queues and local workers per queue.
 */
export async function measureIdle(
  postmasterPid: number | undefined,
  worker: {
    pid: number
    probe(): Promise<{ statements: number; byStatement: Array<{ sql: string; calls: number }> }>
  },
  seconds: number,
): Promise<IdleCost> {
  await worker.probe()
  const meter = startCpuMeter(postmasterPid, worker.pid)
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
  // µs per "event" with one event per second is µs per second: 10 000 µs/s is 1 % of a core.
  const split = meter(seconds)
  const probe = await worker.probe()
  const percent = (usPerSecond: number) => round(usPerSecond / 10_000, 2)
  return {
    postgresPercent: split.postgresUsPerEvent === null ? null : percent(split.postgresUsPerEvent),
    workerPercent: percent(split.workerUsPerEvent ?? 0),
    workerStatementsPerSecond: round(probe.statements / seconds, 1),
    topStatements: probe.byStatement
      .slice(0, 5)
      .map((s) => ({ sql: s.sql, perSecond: round(s.calls / seconds, 1) })),
  }
}
