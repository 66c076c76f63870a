/**
 * Preloaded into the worker child (`node --import tsx --import bench/probe.ts src/cli/main.ts start`)
 * so the benchmark can see inside it without changing it: it counts SQL statements by text
 * (pg-boss and our own, through pg.Client.prototype.query) and measures event-loop delay.
 * The parent asks over the IPC channel; each answer resets the counters.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import pg from 'pg'

export interface ProbeReport {
  statements: number
  /** Statement count per SQL text (first 120 characters, whitespace folded), largest first. */
  byStatement: Array<{ sql: string; calls: number }>
  /** Event-loop delay in ms since the last report. */
  loopDelayMs: { p50: number; p99: number; max: number; mean: number }
  cpuUserMs: number
  cpuSystemMs: number
  heapUsedBytes: number
  rssBytes: number
}

const counts = new Map<string, number>()
type Query = (this: pg.Client, ...args: unknown[]) => unknown
const proto = pg.Client.prototype as unknown as { query: Query }
const original = proto.query
proto.query = function (this: pg.Client, ...args: unknown[]) {
  const first = args[0] as string | { text?: string } | undefined
  const text = typeof first === 'string' ? first : first?.text
  if (text) counts.set(text, (counts.get(text) ?? 0) + 1)
  return original.apply(this, args)
}

const resolutionMs = 10
const loop = monitorEventLoopDelay({ resolution: resolutionMs })
loop.enable()
let cpu = process.cpuUsage()

function report(): ProbeReport {
  const folded = new Map<string, number>()
  let statements = 0
  for (const [text, n] of counts) {
    const sql = text.replace(/\s+/g, ' ').trim().slice(0, 120)
    folded.set(sql, (folded.get(sql) ?? 0) + n)
    statements += n
  }
  const used = process.cpuUsage(cpu)
  // The histogram holds each sampling tick's whole interval; the delay is what exceeds it.
  const lag = (ns: number) => Math.max(0, Math.round((ns / 1e6 - resolutionMs) * 100) / 100)
  const mem = process.memoryUsage()
  const out: ProbeReport = {
    statements,
    byStatement: [...folded].map(([sql, calls]) => ({ sql, calls })).sort((a, b) => b.calls - a.calls),
    loopDelayMs: {
      p50: lag(loop.percentile(50)),
      p99: lag(loop.percentile(99)),
      max: lag(loop.max),
      mean: lag(loop.mean),
    },
    cpuUserMs: Math.round(used.user / 1000),
    cpuSystemMs: Math.round(used.system / 1000),
    heapUsedBytes: mem.heapUsed,
    rssBytes: mem.rss,
  }
  counts.clear()
  loop.reset()
  cpu = process.cpuUsage()
  return out
}

process.on('message', (msg: unknown) => {
  if (msg === 'probe:report') process.send?.({ probe: report() })
})
