/**
 * `npm test`: provides a Postgres (TEST_DATABASE_URL, or an embedded one of the run's own under
 * .data/, removed when the run ends), migrates
 * a template database once, then runs every test file with node:test; each file clones the
 * template into a database of its own (test/helpers/db.ts).
 */
import { spawn } from 'node:child_process'
import { glob, rm, stat } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { startEmbedded, usableDataDir } from '../src/db/embedded.ts'
import { migrate } from '../src/db/migrate.ts'
import { createPool } from '../src/db/pool.ts'
import { createLogger } from '../src/log/log.ts'
import { startQueue } from '../src/queue/boss.ts'
import { isAlive } from '../src/runtime/alive.ts'
import { readDurations } from './durations.ts'

// Per run, so concurrent runs against one server do not drop each other's template.
const templateDb = `observers_test_template_${process.pid}`

function withDatabase(url: string, name: string): string {
  const u = new URL(url)
  u.pathname = `/${name}`
  return u.toString()
}

async function dropDatabase(adminUrl: string, name: string) {
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  await admin.query(`drop database if exists ${name} with (force)`)
  await admin.end()
}

async function prepareTemplate(adminUrl: string) {
  await dropDatabase(adminUrl, templateDb)
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  await admin.query(`create database ${templateDb}`)
  await admin.end()
  const url = withDatabase(adminUrl, templateDb)
  const queue = await startQueue(url, { log: createLogger('warn'), poolSize: 2, supervise: false })
  await queue.stop({ graceful: false, close: true })
  const pool = createPool(url, { max: 1 })
  await migrate(pool)
  await pool.end()
}

/**
 * Connections budgeted per file: most hold about a dozen (their pool, a worker's pool, queue and
 * listener), a few up to 40 (four worker processes); 30 leaves room for one of those at its peak.
 */
const connectionsPerFile = 30

/**
 * How many files run at once. Most tests wait on Postgres, receivers and child workers rather
 * than on the CPU: three files at a time kept 55 % of two cores busy (329 s of CPU in 306 s),
 * and Postgres on the same machine takes part of the rest, so two files per core fill the CPU.
 * Five on two cores finished sooner (1388 s against 1619 s for three, side by side on a loaded
 * machine) but starved files past their waits (7 failures where three had 2). Four files peaked
 * at 87 connections on the embedded server. The server's free connections
 * bound it too, at `connectionsPerFile` each: three files on Postgres's default of 100, and
 * fewer for a suite started beside one already running there.
 */
async function fileConcurrency(adminUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  const { rows } = await client.query<{ free: number }>(
    `select current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
            - (select count(*)::int from pg_stat_activity where backend_type = 'client backend') as free`,
  )
  await client.end()
  const byConnections = Math.floor((rows[0]?.free ?? 0) / connectionsPerFile)
  const byCpu = os.availableParallelism() * 2
  return Math.max(1, Math.min(byCpu, byConnections))
}

/**
 * Each run's embedded cluster is its own (`.data/test-postgres-<pid>`), so two suites started from
 * one checkout never remove each other's server. A run that was killed leaves its cluster (over
 * 100 MB) behind; the next run removes it.
 */
async function removeAbandonedClusters() {
  for await (const dir of glob('.data/test-postgres*')) {
    const pid = Number(/-(\d+)$/.exec(dir)?.[1])
    if (pid && isAlive(pid)) continue
    await rm(usableDataDir(path.resolve(dir)), { recursive: true, force: true })
    await rm(dir, { recursive: true, force: true })
  }
}

/** The files named, and the test files under each folder named (node --test takes no folders). */
async function testFiles(args: string[]): Promise<string[]> {
  const files: string[] = []
  for (const arg of args) {
    if ((await stat(arg).catch(() => undefined))?.isDirectory()) {
      files.push(...(await Array.fromAsync(glob(path.join(arg, '**/*.test.ts')))).sort())
    } else {
      files.push(arg)
    }
  }
  return files
}

async function main() {
  // Flags (e.g. `--test-reporter=...`, `--test-name-pattern=...`) go to node --test; the rest are files.
  const flags = process.argv.slice(2).filter((a) => a.startsWith('--'))
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'))
  let adminUrl = process.env.TEST_DATABASE_URL
  let stop = async () => {}
  if (!adminUrl) {
    await removeAbandonedClusters()
    const dataDir = path.resolve(`.data/test-postgres-${process.pid}`)
    const embedded = await startEmbedded(dataDir, {
      trust: true,
      onNotice: (msg) => console.log(`# ${msg}`),
      // A cluster removed when the run ends needs no durability: without fsync, the WAL each
      // template clone and commit writes is never waited for on disk. Connections for as many
      // files as the CPU can keep busy (see fileConcurrency).
      settings: { fsync: 'off', full_page_writes: 'off', max_connections: '300' },
    })
    adminUrl = embedded.url
    // The cluster is only for this run: its files (over 100 MB) go with it.
    stop = async () => {
      await embedded.stop()
      await rm(embedded.dataDir, { recursive: true, force: true })
    }
    console.log(`# embedded Postgres for tests at ${adminUrl}`)
  } else {
    console.log(`# tests on ${adminUrl.replace(/\/\/[^@/]*@/, '//***@')}`)
  }
  let code = 1
  try {
    await prepareTemplate(adminUrl)
    const found = await testFiles(args.length > 0 ? args : ['test'])
    // Longest first (files not timed yet before all), so no long file is left to run alone at the end.
    const took = readDurations()
    const files = found.toSorted((a, b) => (took[b] ?? Infinity) - (took[a] ?? Infinity))
    // The heavy fault variants (FAULTS_FULL=1, docs/reliability.md) run for many minutes. The limit
    // only bounds a hung file: the longest took 40 s alone on a busy machine, and over three
    // minutes beside a second suite on a loaded one.
    const timeoutMs = process.env.FAULTS_FULL === '1' ? 3_600_000 : 600_000
    const concurrency = process.env.TEST_CONCURRENCY
      ? Number(process.env.TEST_CONCURRENCY)
      : await fileConcurrency(adminUrl)
    console.log(`# ${files.length} files, ${concurrency} at a time`)
    // Node's own choice of reporter, plus the one that times files for the next run's order;
    // a reporter given on the command line replaces both.
    const reporters = flags.some((f) => f.startsWith('--test-reporter'))
      ? []
      : [
          `--test-reporter=${process.stdout.isTTY ? 'spec' : 'tap'}`,
          '--test-reporter-destination=stdout',
          `--test-reporter=${path.resolve(import.meta.dirname, 'durations.ts')}`,
          '--test-reporter-destination=stdout',
        ]
    code = await new Promise<number>((resolve) => {
      const child = spawn(
        process.execPath,
        [
          '--test',
          `--test-concurrency=${concurrency}`,
          `--test-timeout=${timeoutMs}`,
          ...reporters,
          ...flags,
          ...files,
        ],
        {
          stdio: 'inherit',
          env: {
            // Every file and every CLI it spawns loads the same modules: V8 compiles them once.
            NODE_COMPILE_CACHE: path.resolve('.data/compile-cache'),
            ...process.env,
            // And Node strips their types once (test/strip-cache.js) instead of in every process.
            NODE_OPTIONS: `--import=${path.resolve(import.meta.dirname, 'strip-cache.js')} ${process.env.NODE_OPTIONS ?? ''}`,
            TEST_DATABASE_URL: adminUrl,
            TEST_TEMPLATE_DB: templateDb,
          },
        },
      )
      child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)))
    })
  } finally {
    if (process.env.TEST_DATABASE_URL) await dropDatabase(adminUrl, templateDb).catch(() => {})
    await stop()
  }
  process.exit(code)
}

await main()
