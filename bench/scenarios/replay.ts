import { spawn } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { deliveryId } from '../../src/dispatch/match.ts'
import { clearJobs, resetTables } from '../database.ts'
import type { BenchContext, ScenarioResult } from '../harness.ts'
import { fmt } from '../harness.ts'
import { round } from '../stats.ts'

const root = path.resolve(import.meta.dirname, '../..')
const bin = path.join(root, 'bin/observers.js')
const goalMs = 10_000
const observer = 'bench-replay'
const statuses = ['new', 'paid', 'shipped', 'cancelled', 'returned']
const chunkRows = 100_000

/**
 * `rows` changes of the bench table straight into the change log (as dispatched rows: the trigger
 * would cost minutes and measures nothing here), one in five `shipped`, so the observer's
 * condition matches a fifth of them; then half of those are recorded as delivered.
 */
async function fillLog(ctx: BenchContext, rows: number): Promise<{ matched: number; delivered: number }> {
  const { pool } = ctx.db
  await clearJobs(pool)
  await resetTables(pool)
  await pool.query('truncate observers.deliveries')
  for (let from = 1; from <= rows; from += chunkRows) {
    const to = Math.min(rows, from + chunkRows - 1)
    await pool.query(
      `insert into observers.change_log (event, entity, entity_id, after)
       select 'INSERT', 'bench.events', g::text,
              jsonb_build_object('id', g, 'account_id', g % 1000,
                'status', (array[${statuses.map((s) => `'${s}'`).join(',')}])[g % 5 + 1],
                'amount', ((g::bigint * 7919 % 100000) / 100.0)::numeric(12, 2), 'note', 'order ' || g,
                'created_at', now())
         from generate_series($1::int, $2::int) g`,
      [from, to],
    )
  }
  const { rows: shipped } = await pool.query<{ id: string; seq: string }>(
    `select id::text, seq::text from observers.change_log where after ->> 'status' = 'shipped' order by seq`,
  )
  const half = shipped.filter((_, i) => i % 2 === 0)
  for (let i = 0; i < half.length; i += 10_000) {
    const part = half.slice(i, i + 10_000)
    await pool.query(
      `insert into observers.deliveries (delivery_id, observer, action_index, event_id, entity, entity_id,
         seq, outcome, attempts, first_attempt_at, last_attempt_at, delivered_at, job_id, job_attempt)
       select d, $2, 0, e, 'bench.events', s::text, s, 'delivered', 1, now(), now(), now(), gen_random_uuid(), 1
         from unnest($1::text[], $3::text[], $4::bigint[]) as u(d, e, s)`,
      [
        part.map((r) => deliveryId(r.id, observer, 0)),
        observer,
        part.map((r) => r.id),
        part.map((r) => r.seq),
      ],
    )
  }
  await pool.query('vacuum analyze observers.change_log, observers.deliveries')
  return { matched: shipped.length, delivered: half.length }
}

async function writeObserver(receiverUrl: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'observers-bench-replay-'))
  const file = {
    name: observer,
    entity: 'bench.events',
    events: ['INSERT'],
    condition: "status = 'shipped'",
    actions: [{ type: 'webhook', url: receiverUrl }],
  }
  await writeFile(path.join(dir, `${observer}.json`), JSON.stringify(file))
  return dir
}

/** One `observers replay --dry-run --json` from spawn to exit, and what it printed. */
function dryRun(databaseUrl: string, dir: string): Promise<{ ms: number; out: Record<string, number> }> {
  const started = performance.now()
  const child = spawn(process.execPath, [bin, 'replay', '--since', '1d', '--dry-run', '--json'], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: databaseUrl, OBSERVERS_DIR: dir, LOG_LEVEL: 'warn' },
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
      if (code !== 0) reject(new Error(`observers replay --dry-run exited ${code}:\n${stderr}`))
      else resolve({ ms: performance.now() - started, out: JSON.parse(stdout) })
    })
  })
}

/**
 * `observers replay --dry-run` over `--replay-changes` changes (default 1 M), a fifth of them
 * matching, half of those already delivered: wall time from spawn to exit, three runs, and
 * the counts checked against what was written.
 */
export async function runReplay(ctx: BenchContext): Promise<ScenarioResult> {
  const rows = ctx.options.replayChanges
  ctx.note(`replay: writing ${rows} changes and their delivery record`)
  const { matched, delivered } = await fillLog(ctx, rows)
  const dir = await writeObserver(ctx.receiver.url)
  const times: number[] = []
  for (let i = 0; i < 3; i++) {
    const { ms, out } = await dryRun(ctx.db.url, dir)
    const got = [out.changes, out.deliveries, out.already_delivered]
    const want = [rows, matched - delivered, delivered]
    if (got.join() !== want.join())
      throw new Error(`dry run counted ${got.join('/')}, expected ${want.join('/')}`)
    times.push(ms)
    ctx.note(`replay: dry run ${i + 1}: ${Math.round(ms)} ms`)
  }
  const median = times.toSorted((a, b) => a - b)[1] ?? Number.NaN
  return {
    figures: {
      changes: rows,
      matched,
      delivered,
      runsMs: times.map((t) => round(t, 0)),
      medianMs: round(median, 0),
    },
    rows: [
      {
        metric: `replay --dry-run, ${rows} changes (${matched} match, ${delivered} delivered; median of 3, spawn → exit)`,
        value: fmt(median, 'ms', 0),
        goal: `< ${goalMs} ms`,
        met: median < goalMs,
      },
    ],
  }
}
