import { spawn } from 'node:child_process'
import path from 'node:path'
import { benchTable, clearJobs, resetTables, watchBenchTable } from '../database.ts'
import type { BenchContext, ScenarioResult } from '../harness.ts'
import { fmt } from '../harness.ts'
import { connectClients, type LoadClients } from '../load.ts'
import { distribution, round } from '../stats.ts'

const root = path.resolve(import.meta.dirname, '../..')
const bin = path.join(root, 'bin/observers.js')
const appClients = 4
const updateRow = {
  name: 'bench-app-update',
  text: `update ${benchTable} set amount = amount + 1 where id = $1`,
}

/** Commits and their latencies while `running()` holds, from K clients doing single-row updates. */
async function writeWhile(load: LoadClients, rows: number, running: () => boolean) {
  const latencies: number[] = []
  const started = performance.now()
  await Promise.all(
    load.clients.map(async (c) => {
      while (running()) {
        const t = performance.now()
        await c.query({ ...updateRow, values: [1 + Math.floor(Math.random() * rows)] })
        latencies.push(performance.now() - t)
      }
    }),
  )
  const seconds = (performance.now() - started) / 1000
  const d = distribution(latencies)
  return { commits: latencies.length, seconds, rate: latencies.length / seconds, p50: d.p50, p99: d.p99 }
}

async function fillTable(ctx: BenchContext, rows: number) {
  const { pool } = ctx.db
  await clearJobs(pool)
  await resetTables(pool)
  await pool.query(`truncate ${benchTable} restart identity`)
  for (let from = 1; from <= rows; from += 200_000) {
    await pool.query(
      `insert into ${benchTable} (account_id, status, amount, note)
       select g % 1000, 'new', (g % 10000) / 100.0, 'order ' || g from generate_series($1::int, $2::int) g`,
      [from, Math.min(rows, from + 199_999)],
    )
  }
  await pool.query(`vacuum analyze ${benchTable}`)
  // The application's writes are captured, as they would be once an observer watches the table.
  await watchBenchTable(pool)
}

/** `observers backfill` as an operator runs it, to its end; its JSON state. */
function backfill(ctx: BenchContext, extra: string[]): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [bin, 'backfill', benchTable, '--json', ...extra], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: ctx.db.url, OBSERVERS_DIR: ctx.observersDir, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString()
  })
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString()
  })
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`observers backfill exited ${code}:\n${stderr}`))
      else resolve(JSON.parse(stdout))
    })
  })
}

/**
 * The application's commit rate alone, during a backfill of `--backfill-rows` rows (default 1 M)
 * of the table it writes, and alone again; the backfill's jobs are queued, not delivered (no
 * worker runs: what delivering costs is the throughput scenario's). Goal: the rate during the
 * backfill within 10 % of the mean of the two alone.
 */
export async function runBackfill(ctx: BenchContext): Promise<ScenarioResult> {
  const rows = ctx.options.backfillRows
  const seconds = ctx.options.backfillBaselineSeconds
  ctx.note(`backfill: loading ${rows} rows`)
  await fillTable(ctx, rows)
  const load = await connectClients(ctx.db.url, appClients)
  try {
    const alone = async () => {
      const until = performance.now() + seconds * 1000
      return writeWhile(load, rows, () => performance.now() < until)
    }
    ctx.note(`backfill: ${appClients} application clients alone for ${seconds} s`)
    const before = await alone()
    ctx.note('backfill: the same clients during the backfill')
    let running = true
    const started = performance.now()
    const done = backfill(ctx, ctx.options.backfillArgs).finally(() => {
      running = false
    })
    const during = await writeWhile(load, rows, () => running)
    const state = await done
    const backfillSeconds = (performance.now() - started) / 1000
    if (state.rows_done !== rows) throw new Error(`backfill read ${String(state.rows_done)} rows of ${rows}`)
    ctx.note(`backfill: alone again for ${seconds} s`)
    const after = await alone()
    const baseline = (before.rate + after.rate) / 2
    const ratio = during.rate / baseline
    const perSecond = rows / backfillSeconds
    return {
      figures: {
        rows,
        appClients,
        backfillArgs: ctx.options.backfillArgs,
        alone: [before, after].map((r) => ({ ...r, rate: round(r.rate, 0) })),
        during: { ...during, rate: round(during.rate, 0) },
        ratio: round(ratio, 3),
        backfillSeconds: round(backfillSeconds, 1),
        backfillRowsPerSecond: round(perSecond, 0),
      },
      rows: [
        {
          metric: `application commits/s alone (${appClients} clients, before; after)`,
          value: `${fmt(before.rate, '/s', 0)}; ${fmt(after.rate, '/s', 0)}`,
        },
        {
          metric: `application commits/s during the backfill (p99 ${fmt(during.p99, 'ms')} vs ${fmt(before.p99, 'ms')})`,
          value: fmt(during.rate, '/s', 0),
        },
        { metric: 'during / alone', value: fmt(ratio, '', 3), goal: '≥ 0.9', met: ratio >= 0.9 },
        {
          metric: `backfill of ${rows} rows`,
          value: `${fmt(backfillSeconds, 's')} (${fmt(perSecond, 'rows/s', 0)})`,
        },
      ],
    }
  } finally {
    await load.close()
    await ctx.db.pool.query('truncate observers.backfills').catch(() => {})
  }
}
