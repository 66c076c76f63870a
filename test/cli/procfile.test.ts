import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { createTestDatabase } from '../helpers/db.ts'
import { exited, waitForOutput } from '../helpers/process.ts'
import { observersDir } from '../helpers/worker.ts'

const root = path.resolve(import.meta.dirname, '../..')

const logOn = (name: string) => ({
  name,
  entity: 'procfile_items',
  events: ['INSERT'],
  actions: [{ type: 'log', message_template: `${name} saw {{ entity_id }}` }],
})

/** The Procfile's `worker:` command, run as a process manager runs it (no npm in between). */
async function startProcfileWorker(env: Record<string, string>) {
  const line = (await readFile(path.join(root, 'Procfile'), 'utf8'))
    .split('\n')
    .find((l) => l.startsWith('worker:'))
  assert.ok(line, 'the Procfile has a worker line')
  const child = spawn('sh', ['-c', `exec ${line.slice('worker:'.length).trim()}`], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'info', LOG_PRETTY: 'false', OBSERVERS_DB_POOL_SIZE: '4', ...env },
  })
  const output: string[] = []
  child.stdout.on('data', (d: Buffer) => output.push(d.toString('utf8')))
  child.stderr.on('data', (d: Buffer) => output.push(d.toString('utf8')))
  const reap = () => child.kill('SIGKILL')
  process.once('exit', reap)
  child.once('exit', () => process.off('exit', reap))
  return Object.assign(child, { output })
}

// The system Node (may be older than 22.18: bin/observers.js then runs on the project's own)
// and the project's Node 22 first in PATH, as under npm.
const paths = {
  'the system Node': (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((p) => !p.includes('node_modules'))
    .join(path.delimiter),
  'Node 22 first in PATH': process.env.PATH ?? '',
}

for (const [label, PATH] of Object.entries(paths)) {
  test(`SIGHUP to the Procfile's worker reloads the observers and keeps it running (${label})`, async (t) => {
    const db = await createTestDatabase('create table procfile_items (id serial primary key)')
    t.after(() => db.drop())
    const dir = await observersDir({ 'first.json': logOn('first') })
    const child = await startProcfileWorker({
      PATH,
      DATABASE_URL: db.url,
      OBSERVERS_DIR: dir,
      OBSERVERS_WATCH_DIR: 'false',
      PORT: '0',
    })
    await waitForOutput(child, /listening for changes/, 60_000)
    await writeFile(path.join(dir, 'second.json'), JSON.stringify(logOn('second')))
    child.kill('SIGHUP')
    await waitForOutput(child, /loaded 2 observer\(s\)/, 30_000)
    await db.pool.query('insert into procfile_items default values')
    await waitForOutput(child, /second saw 1/, 30_000)
    assert.equal(child.exitCode, null, 'still running after SIGHUP')
    child.kill('SIGTERM')
    assert.equal((await exited(child)).code, 0, child.output.join('').slice(-2000))
  })
}
