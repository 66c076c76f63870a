import { readdirSync, readFileSync } from 'node:fs'
import { setPriority } from 'node:os'

/** Memory of a process as the kernel sees it (Linux /proc); undefined elsewhere or once it exited. */
export interface ProcessMemory {
  rssBytes: number
  /** Peak resident set size over the process's life. */
  hwmBytes: number
}

export function processMemory(pid: number): ProcessMemory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0)
    return { rssBytes: kb('VmRSS') * 1024, hwmBytes: kb('VmHWM') * 1024 }
  } catch {
    return undefined
  }
}

/** CPU time of every process on the machine, in clock ticks, for busy-share over an interval. */
export interface CpuTicks {
  busy: number
  total: number
}

export function machineCpu(): CpuTicks | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? ''
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number)
    const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)
    return { busy, total: busy + (idle ?? 0) + (iowait ?? 0) }
  } catch {
    return undefined
  }
}

/** Share of all CPUs busy between two readings, 0..1. */
export function busyShare(from: CpuTicks | undefined, to: CpuTicks | undefined): number | undefined {
  if (!from || !to || to.total === from.total) return undefined
  return (to.busy - from.busy) / (to.total - from.total)
}

/** Samples a process's RSS every `intervalMs` until stopped; keeps the largest RSS seen. */
export function sampleMemory(pid: number, intervalMs: number) {
  let peakRss = 0
  let lastHwm = 0
  const take = () => {
    const m = processMemory(pid)
    if (!m) return
    peakRss = Math.max(peakRss, m.rssBytes)
    lastHwm = m.hwmBytes
  }
  take()
  const timer = setInterval(take, intervalMs)
  return {
    stop(): { peakRssBytes: number; hwmBytes: number } {
      take()
      clearInterval(timer)
      return { peakRssBytes: peakRss, hwmBytes: lastHwm }
    },
  }
}

const clockTicksPerSecond = 100

function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name may contain spaces; fields after it are space-separated.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** CPU milliseconds (user + system) a process has used so far. */
export function processCpuMs(pid: number): number {
  const f = statFields(pid)
  if (!f) return 0
  return ((Number(f[11]) + Number(f[12])) * 1000) / clockTicksPerSecond
}

export function parentPid(pid: number): number | undefined {
  const f = statFields(pid)
  return f ? Number(f[1]) : undefined
}

/** CPU milliseconds used so far by a Postgres server: the postmaster and every process it forked. */
export function serverCpuMs(postmasterPid: number): number {
  let total = processCpuMs(postmasterPid)
  for (const pid of childPids(postmasterPid)) total += processCpuMs(pid)
  return total
}

export function processName(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
  } catch {
    return undefined
  }
}

/** Processes forked by `parent` (one level), from /proc. */
export function childPids(parent: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => parentPid(pid) === parent)
}

/**
 * Runs `pids` at niceness `nice` (negative needs root). On a shared machine this keeps other
 * work from stealing the benchmark's CPU in the middle of a measurement.
 */
export function renice(pids: number[], nice: number): void {
  for (const pid of pids) {
    try {
      setPriority(pid, nice)
    } catch {
      // A process that exited meanwhile, or one we may not renice: measured as it is.
    }
  }
}
