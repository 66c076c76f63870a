import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import pg from 'pg'
import { startEmbedded } from '../../src/db/embedded.ts'
import { isAlive } from '../../src/runtime/alive.ts'
import { exited, waitForOutput } from '../helpers/process.ts'
import { eventually } from '../helpers/worker.ts'

const root = path.resolve(import.meta.dirname, '../..')

async function postmasterPid(dataDir: string): Promise<number | undefined> {
  const text = await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '')
  return Number(text.split('\n')[0]) || undefined
}

test('Ctrl-C on npm start drains quietly, exits 0 and stops the embedded server last', async (t) => {
  const home = await mkdtemp(path.join(tmpdir(), 'observers-start-'))
  await chmod(home, 0o755)
  t.after(() => rm(home, { recursive: true, force: true }))
  const dataDir = path.join(home, 'postgres')
  const { DATABASE_URL: _unset, ...env } = process.env
  // Its own process group, like a terminal's foreground job, so SIGINT can go to the whole group.
  const child = Object.assign(
    spawn('npm', ['start'], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...env, OBSERVERS_EMBEDDED_DATA_DIR: dataDir, PORT: '0', LOG_PRETTY: 'false' },
    }),
    { output: [] as string[] },
  )
  const reap = () => child.pid && process.kill(-child.pid, 'SIGKILL')
  process.once('exit', reap)
  t.after(() => process.off('exit', reap))
  child.stdout.on('data', (d: Buffer) => child.output.push(d.toString('utf8')))
  child.stderr.on('data', (d: Buffer) => child.output.push(d.toString('utf8')))
  await waitForOutput(child, /Order 1 shipped to ada@example\.com \(total 129\.90\) via INSERT/, 120_000)
  const postgres = await postmasterPid(dataDir)
  assert.ok(postgres && isAlive(postgres), 'the embedded server runs')
  assert.ok(existsSync(path.join(home, 'embedded.json')))

  process.kill(-(child.pid ?? 0), 'SIGINT')
  const { code } = await exited(child)
  const output = child.output.join('')
  assert.equal(code, 0, output.slice(-3000))
  assert.doesNotMatch(output, /OB009|57P01|"level":50/, 'no database errors while draining')
  assert.match(output, /"msg":"stopped"/)
  assert.ok(!existsSync(path.join(home, 'embedded.json')), 'embedded.json is removed')
  await eventually(() => !isAlive(postgres), 10_000, 'the postmaster to be gone')
  assert.ok(!existsSync(path.join(dataDir, 'postmaster.pid')), 'the server shut down cleanly')
})

test('as root, an embedded data directory in a private folder gets a usable place', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('runs as root only')
  const privateHome = await mkdtemp(path.join(tmpdir(), 'observers-private-'))
  await chmod(privateHome, 0o700)
  t.after(() => rm(privateHome, { recursive: true, force: true }))
  const server = await startEmbedded(path.join(privateHome, 'project', '.data', 'postgres'))
  t.after(async () => {
    await server.stop()
    await rm(path.dirname(server.dataDir), { recursive: true, force: true })
  })
  assert.ok(!server.dataDir.startsWith(privateHome), `data outside the private folder: ${server.dataDir}`)
  const client = new pg.Client({ connectionString: server.url })
  await client.connect()
  const { rows } = await client.query<{ one: number }>('select 1 as one')
  await client.end()
  assert.equal(rows[0]?.one, 1)
})
