import { spawn } from 'node:child_process'
import path from 'node:path'
import { startCpuMeter } from '../cpu.ts'
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

/** Commits of every other database of the server: its other load, which the figures also feel. */
async function otherCommits(ctx: BenchContext): Promise<number> {
  const { rows } = await ctx.db.pool.query<{ n: string }>(
    'select coalesce(sum(xact_commit), 0)::text as n from pg_stat_database where datname <> current_database()',
  )
  return Number(rows[0]?.n ?? 0)
}

/**
 * Commits and their latencies while `running()` holds, from K clients doing single-row updates;
 * with the machine's CPU split and the other databases' commits over the same time, to tell a
 * quiet measurement from a crowded one.
 */
async function writeWhile(ctx: BenchContext, load: LoadClients, rows: number, running: () => boolean) {
  const latencies: number[] = []
  const started = performance.now()
  const cpu = startCpuMeter(ctx.postmasterPid, undefined)
  const others0 = await otherCommits(ctx)
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
  const split = cpu(Math.max(1, latencies.length))
  // A database dropped meanwhile takes its commits with it: at least 0, then.
  const othersPerSecond = round(Math.max(0, (await otherCommits(ctx)) - others0) / seconds, 0)
  const d = distribution(latencies)
  return {
    commits: latencies.length,
    seconds,
    rate: latencies.length / seconds,
    p50: d.p50,
    p99: d.p99,
    machineBusy: split.machineBusy,
    otherDatabasesCommitsPerSecond: othersPerSecond,
  }
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

type WindowFigures = Awaited<ReturnType<typeof writeWhile>>

/** Commits over several windows as one: their rate, and the worst p99 among them. */
function pooled(windows: WindowFigures[]) {
  const commits = windows.reduce((n, w) => n + w.commits, 0)
  const seconds = windows.reduce((n, w) => n + w.seconds, 0)
  return { windows: windows.length, commits, seconds: round(seconds, 1), rate: commits / seconds }
}

/**
 * `observers backfill` as an operator runs it (`args`: a table, or `--resume <id>`); its pid, a
 * way to stop it as Ctrl-C does (after the page in flight), and its end.
 */
function backfill(ctx: BenchContext, args: string[]) {
  const child = spawn(process.execPath, [bin, 'backfill', ...args, '--json'], {
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
  // Its state is read from the database: a Ctrl-C that comes before the command has set up its
  // handler ends it at once, with nothing printed, as a crash would.
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      if (code === 0 || code === 1 || signal === 'SIGINT') resolve()
      else reject(new Error(`observers backfill exited ${code ?? signal}:\n${stdout}${stderr}`))
    })
  })
  return { pid: child.pid, stop: () => child.kill('SIGINT'), done }
}

/**
 * The application's commit rate alone, during a backfill of `--backfill-rows` rows (default 1 M)
 * of the table it writes, and alone again; the backfill's jobs are queued, not delivered (no
 * worker runs: what delivering costs is the throughput scenario's). Every `--backfill-interval`
 * seconds the backfill is stopped (Ctrl-C: after its page in flight) for a window alone, then
 * resumed, so the rate alone is sampled all along the run and a machine whose other load drifts
 * (a shared one) weighs on both sides alike. Goal: the rate during the backfill within 10 % of the
 * rate alone.
 */
export async function runBackfill(ctx: BenchContext): Promise<ScenarioResult> {
  const rows = ctx.options.backfillRows
  const seconds = ctx.options.backfillBaselineSeconds
  const interval = ctx.options.backfillIntervalSeconds
  ctx.note(`backfill: loading ${rows} rows`)
  await fillTable(ctx, rows)
  const load = await connectClients(ctx.db.url, appClients)
  try {
    const alone = async () => {
      const until = performance.now() + seconds * 1000
      return writeWhile(ctx, load, rows, () => performance.now() < until)
    }
    ctx.note(`backfill: ${appClients} application clients alone for ${seconds} s`)
    const before = await alone()
    const between: WindowFigures[] = []
    const during: WindowFigures[] = []
    let backfillMs = 0
    let args = [benchTable, ...ctx.options.backfillArgs]
    for (;;) {
      ctx.note(`backfill: the same clients during the backfill${interval ? ` (${interval} s at most)` : ''}`)
      let running = true
      const started = performance.now()
      const child = backfill(ctx, args)
      const timer = interval ? setTimeout(child.stop, interval * 1000) : undefined
      const done = child.done.finally(() => {
        running = false
        clearTimeout(timer)
      })
      during.push(await writeWhile(ctx, load, rows, () => running))
      await done
      const { rows: states } = await ctx.db.pool.query<{
        id: string
        state: string
        rows_done: string
        error: string | null
      }>('select id, state, rows_done, error from observers.backfills order by id desc limit 1')
      const state = states[0]
      if (!state) throw new Error('observers backfill recorded no backfill')
      backfillMs += performance.now() - started
      if (state.state === 'done') {
        if (Number(state.rows_done) !== rows)
          throw new Error(`backfill read ${state.rows_done} rows of ${rows}`)
        break
      }
      if (state.state === 'failed') throw new Error(`backfill failed: ${state.error}`)
      ctx.note(`backfill: stopped at ${state.rows_done} rows; alone for ${seconds} s`)
      between.push(await alone())
      args = ['--resume', state.id]
    }
    ctx.note(`backfill: alone again for ${seconds} s`)
    const after = await alone()
    const withBackfill = pooled(during)
    const withoutBackfill = pooled([before, ...between, after])
    const ratio = withBackfill.rate / withoutBackfill.rate
    const ratioBefore = withBackfill.rate / before.rate
    const backfillSeconds = backfillMs / 1000
    const perSecond = rows / backfillSeconds
    const p99 = Math.max(...during.map((w) => w.p99))
    const busy = (ws: WindowFigures[]) =>
      `${fmt(Math.min(...ws.map((w) => w.machineBusy ?? 0)), '', 2)}; ${fmt(Math.max(...ws.map((w) => w.otherDatabasesCommitsPerSecond)), '/s', 0)}`
    return {
      figures: {
        rows,
        appClients,
        backfillArgs: ctx.options.backfillArgs,
        intervalSeconds: interval,
        before: { ...before, rate: round(before.rate, 0) },
        between: between.map((r) => ({ ...r, rate: round(r.rate, 0) })),
        after: { ...after, rate: round(after.rate, 0) },
        during: during.map((r) => ({ ...r, rate: round(r.rate, 0) })),
        alone: { ...withoutBackfill, rate: round(withoutBackfill.rate, 0) },
        withBackfill: { ...withBackfill, rate: round(withBackfill.rate, 0) },
        ratio: round(ratio, 3),
        ratioToBefore: round(ratioBefore, 3),
        backfillSeconds: round(backfillSeconds, 1),
        backfillRowsPerSecond: round(perSecond, 0),
      },
      rows: [
        {
          metric: `application commits/s alone (${appClients} clients; ${withoutBackfill.windows} windows of ${seconds} s: before, between, after)`,
          value: `${fmt(withoutBackfill.rate, '/s', 0)} (${[before, ...between, after].map((w) => fmt(w.rate, '', 0)).join(', ')})`,
        },
        {
          metric: `application commits/s during the backfill (${during.length} windows; p99 ${fmt(p99, 'ms')} vs ${fmt(before.p99, 'ms')} before)`,
          value: `${fmt(withBackfill.rate, '/s', 0)} (${during.map((w) => fmt(w.rate, '', 0)).join(', ')})`,
        },
        { metric: 'during / alone', value: fmt(ratio, '', 3), goal: '≥ 0.9', met: ratio >= 0.9 },
        { metric: 'during / before', value: fmt(ratioBefore, '', 3) },
        {
          metric:
            'load: the least share of the CPUs busy in a window; the most commits/s of the server’s other databases (alone | during)',
          value: `${busy([before, ...between, after])} | ${busy(during)}`,
        },
        {
          metric: `backfill of ${rows} rows (time running)`,
          value: `${fmt(backfillSeconds, 's')} (${fmt(perSecond, 'rows/s', 0)})`,
        },
      ],
    }
  } finally {
    await load.close()
    await ctx.db.pool.query('truncate observers.backfills').catch(() => {})
  }
}
