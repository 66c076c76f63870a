import { clearJobs, resetTables } from '../database.ts'
import { awaitDeliveries, type BenchContext, fmt, type ScenarioResult, startWorker } from '../harness.ts'
import { connectClients, insertAtRate, type LoadClients } from '../load.ts'
import { processMemory } from '../proc.ts'
import { mib, round } from '../stats.ts'
import type { WorkerProcess } from '../worker.ts'

const sampleSeconds = 10
const flatWithin = 0.1

interface Sample {
  atSeconds: number
  rssMiB: number
  heapUsedMiB: number
  loopDelayP99Ms: number
  loopDelayMaxMs: number
  delivered: number
}

/** Relative change from the first samples after warm-up to the last ones (three each, averaged). */
function growth(samples: Sample[], pick: (s: Sample) => number): number {
  const mean = (xs: Sample[]) => xs.reduce((sum, s) => sum + pick(s), 0) / xs.length
  const span = Math.min(3, Math.floor(samples.length / 2))
  if (span === 0) return Number.NaN
  const first = mean(samples.slice(0, span))
  return round((mean(samples.slice(-span)) - first) / first, 3)
}

/** Offers the soak rate in 10 s slices, sampling the worker after each. */
async function offerAndSample(ctx: BenchContext, worker: WorkerProcess, load: LoadClients) {
  const { soakSeconds, soakRate } = ctx.options
  const samples: Sample[] = []
  let committed = 0
  for (let elapsed = 0; elapsed < soakSeconds; elapsed += sampleSeconds) {
    const run = await insertAtRate(load, soakRate, Math.min(sampleSeconds, soakSeconds - elapsed))
    committed += run.commits.size
    const probe = await worker.probe()
    samples.push({
      atSeconds: Math.min(elapsed + sampleSeconds, soakSeconds),
      rssMiB: mib(processMemory(worker.pid)?.rssBytes ?? 0),
      heapUsedMiB: mib(probe.heapUsedBytes),
      loopDelayP99Ms: probe.loopDelayMs.p99,
      loopDelayMaxMs: probe.loopDelayMs.max,
      delivered: ctx.receiver.arrivals.size,
    })
  }
  return { samples, committed }
}

/**
 * A fixed offered rate for soakSeconds, sampling the worker every 10 s: RSS from /proc (the
 * kernel's view), heap and event-loop delay from the probe preloaded into the worker.
 * The first quarter of the run, and at least the first minute, is warm-up and is not judged:
 * V8 lets the heap grow until its first major collections, and RSS follows it up until then.
 */
export async function runSoak(ctx: BenchContext): Promise<ScenarioResult> {
  const { soakSeconds, soakRate } = ctx.options
  await resetTables(ctx.db.pool)
  await clearJobs(ctx.db.pool)
  const load = await connectClients(ctx.db.url, ctx.options.clients)
  const worker = await startWorker(ctx)
  try {
    ctx.note(`soak: ${soakRate} events/s for ${soakSeconds} s`)
    const { samples, committed } = await offerAndSample(ctx, worker, load)
    await awaitDeliveries(ctx, worker, committed)
    const warmUpSeconds = Math.min(Math.max(60, soakSeconds / 4), soakSeconds - 3 * sampleSeconds)
    const judged = samples.filter((s) => s.atSeconds > warmUpSeconds)
    const rssGrowth = growth(judged, (s) => s.rssMiB)
    const heapGrowth = growth(judged, (s) => s.heapUsedMiB)
    const worstLoopP99 = Math.max(...samples.map((s) => s.loopDelayP99Ms))
    return {
      figures: {
        seconds: soakSeconds,
        rate: soakRate,
        events: committed,
        warmUpSeconds,
        rssGrowth,
        heapGrowth,
        samples,
      },
      rows: [
        {
          metric: `RSS growth after ${warmUpSeconds} s warm-up`,
          value: fmt(rssGrowth * 100, '%', 1),
          goal: `within ±${flatWithin * 100} %`,
          met: Math.abs(rssGrowth) <= flatWithin,
        },
        { metric: 'heap growth after warm-up', value: fmt(heapGrowth * 100, '%', 1) },
        { metric: 'RSS at end', value: fmt(samples.at(-1)?.rssMiB ?? Number.NaN, 'MiB') },
        { metric: 'worst 10 s event-loop delay p99', value: fmt(worstLoopP99, 'ms', 1) },
      ],
    }
  } finally {
    await worker.stop()
    await load.close()
  }
}
