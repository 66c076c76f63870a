import { startCpuMeter } from '../cpu.ts'
import {
  benchTable,
  changeTables,
  clearJobs,
  resetTables,
  unwatchBenchTable,
  watchBenchTable,
} from '../database.ts'
import {
  awaitDeliveries,
  type BenchContext,
  fmt,
  type ScenarioResult,
  startWorker,
  statementFigures,
} from '../harness.ts'
import { processCpuMs } from '../proc.ts'
import { round } from '../stats.ts'

const goalSeconds = 15
const captureGoalUs = 5

/**
 * Changes every measured row in one statement; the rows are [1, maxId], warm-up rows come later.
 * Returns its duration and, when Postgres runs on this machine, the CPU of the backend that ran
 * it: steadier than the duration on a shared machine.
 */
async function timedUpdate(ctx: BenchContext, maxId: number): Promise<{ ms: number; cpuMs: number | null }> {
  await ctx.db.pool.query(`vacuum ${benchTable}`)
  const client = await ctx.db.pool.connect()
  try {
    const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid')
    const pid = ctx.postmasterPid === undefined ? undefined : rows[0]?.pid
    const cpu0 = pid === undefined ? 0 : processCpuMs(pid)
    const started = performance.now()
    await client.query(`update ${benchTable} set amount = amount + 1 where id <= $1`, [maxId])
    const ms = performance.now() - started
    return { ms, cpuMs: pid === undefined ? null : processCpuMs(pid) - cpu0 }
  } finally {
    client.release()
  }
}

async function fillTable(ctx: BenchContext, rows: number): Promise<number> {
  const { pool } = ctx.db
  await resetTables(pool)
  await clearJobs(pool)
  await unwatchBenchTable(pool)
  await pool.query(
    `insert into ${benchTable} (account_id, status, amount, note)
     select g % 1000, 'new', (g % 100000) / 100.0, 'order ' || g from generate_series(1, $1::int) g`,
    [rows],
  )
  const { rows: max } = await pool.query<{ id: string }>(`select max(id) as id from ${benchTable}`)
  return Number(max[0]?.id)
}

/** The same UPDATE with the worker running: statement start → last of its events received. */
async function endToEnd(ctx: BenchContext, rows: number, maxId: number) {
  const worker = await startWorker(ctx)
  try {
    ctx.note(`bulk: one UPDATE of ${rows} rows, end to end`)
    const cpu = startCpuMeter(ctx.postmasterPid, worker.pid)
    const started = performance.now()
    const { ms: statementMs } = await timedUpdate(ctx, maxId)
    const totalMs = (await awaitDeliveries(ctx, worker, rows)) - started
    const split = cpu(rows)
    return { statementMs, totalMs, cpu: split, ...statementFigures(await worker.probe(), rows) }
  } finally {
    await worker.stop()
  }
}

/**
 * One UPDATE of `bulkRows` rows: its cost without the trigger, with the trigger (capture only,
 * no worker), and end to end.
 */
export async function runBulk(ctx: BenchContext): Promise<ScenarioResult> {
  const rows = ctx.options.bulkRows
  const maxId = await fillTable(ctx, rows)
  ctx.note(`bulk: one UPDATE of ${rows} rows, without and with the capture trigger`)
  const plain = await timedUpdate(ctx, maxId)
  await watchBenchTable(ctx.db.pool)
  const captured = await timedUpdate(ctx, maxId)
  const plainMs = plain.ms
  const capturedMs = captured.ms
  await ctx.db.pool.query(`truncate ${await changeTables(ctx.db.pool)}`)
  const e2e = await endToEnd(ctx, rows, maxId)
  const totalS = round(e2e.totalMs / 1000, 2)
  const captureUs = ((capturedMs - plainMs) * 1000) / rows
  const captureCpuUs =
    plain.cpuMs === null || captured.cpuMs === null ? null : ((captured.cpuMs - plain.cpuMs) * 1000) / rows
  return {
    figures: {
      rows,
      statementWithoutTriggerMs: round(plainMs, 1),
      statementWithTriggerMs: round(capturedMs, 1),
      captureCostPerRowUs: round(captureUs, 2),
      captureCpuPerRowUs: captureCpuUs === null ? null : round(captureCpuUs, 2),
      statementWithWorkerMs: round(e2e.statementMs, 1),
      endToEndSeconds: totalS,
      deliveriesPerSecond: round((rows * 1000) / e2e.totalMs, 1),
      duplicates: ctx.receiver.duplicates,
      ...e2e,
    },
    rows: [
      { metric: `UPDATE ${rows} rows, no trigger`, value: fmt(plainMs, 'ms', 0) },
      { metric: `UPDATE ${rows} rows, with trigger`, value: fmt(capturedMs, 'ms', 0) },
      {
        metric: 'capture cost per row',
        value: fmt(captureUs, 'µs', 1),
        goal: `≤ ${captureGoalUs} µs`,
        met: captureUs <= captureGoalUs,
      },
      {
        metric: 'capture CPU per row (its backend)',
        value: captureCpuUs === null ? 'n/a (remote Postgres)' : fmt(captureCpuUs, 'µs', 1),
      },
      {
        metric: 'statement → last delivery',
        value: fmt(totalS, 's', 2),
        goal: `< ${goalSeconds} s`,
        met: totalS < goalSeconds,
      },
      { metric: 'bulk deliveries/s', value: fmt((rows * 1000) / e2e.totalMs, '/s') },
    ],
  }
}
