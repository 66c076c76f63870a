import assert from 'node:assert/strict'
import { rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, type TestContext, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { listenPort } from '../helpers/ports.ts'
import { exited, opsGet, spawnCli, untilChild, waitUntilReady } from '../helpers/process.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { changesSettled } from '../helpers/settled.ts'
import { eventually, observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api } from './helpers.ts'

let db: TestDatabase
let receiver: Receiver
let nextId = 1
// Bounds only a failure: a passing run waits as long as the worker takes, however loaded the machine.
const patienceMs = 120_000

const hook = (name: string, pathname: string) => ({
  name,
  entity: 'items',
  events: ['INSERT'],
  actions: [{ type: 'webhook', url: `${receiver.url}${pathname}` }],
})

async function write(dir: string, file: string, content: unknown) {
  await writeFile(path.join(dir, file), typeof content === 'string' ? content : JSON.stringify(content))
}

/** A worker of the test's own on a fresh directory holding `files`, stopped when the test ends. */
async function workerOn(
  t: TestContext,
  files: Record<string, unknown>,
): Promise<{ dir: string; worker: TestWorker }> {
  const dir = await observersDir(files)
  const worker = await runWorker(db.url, dir, { OBSERVERS_CONCURRENCY: '4' })
  t.after(() => worker.stop())
  return { dir, worker }
}

/** A reload through the API that a broken b.json and a changed a.json get rejected whole. */
async function rejectedReload(dir: string, worker: TestWorker) {
  await write(dir, 'a.json', hook('a', '/a-changed'))
  await write(dir, 'b.json', '{ "name": "b", ')
  return api(worker.worker, '/api/observers/reload', { method: 'POST' })
}

/** Inserts a row and returns the paths the receiver got for it. */
async function deliveredPaths(expected: number): Promise<string[]> {
  const id = nextId++
  await db.pool.query('insert into items values ($1)', [id])
  const got = () => receiver.requests.filter((r) => JSON.parse(r.body).after.id === id)
  await eventually(() => got().length >= expected, patienceMs, `${expected} deliveries of row ${id}`)
  await changesSettled(db.pool, 'public.items', id)
  return got()
    .map((r) => r.path)
    .sort()
}

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  await db.pool.query('create table items (id int primary key)')
})

after(async () => {
  await receiver?.close()
  await db?.drop()
})

test('GET /api/observers lists each observer with its stats', async (t) => {
  const { worker } = await workerOn(t, { 'a.json': hook('a', '/a') })
  assert.deepEqual(await deliveredPaths(1), ['/a'])
  const res = await api(worker.worker, '/api/observers')
  assert.equal(res.status, 200)
  const [a] = res.body.observers
  assert.equal(a.name, 'a')
  assert.equal(a.entity, 'public.items')
  assert.deepEqual(a.events, ['INSERT'])
  assert.deepEqual(a.actions, [
    {
      index: 0,
      type: 'webhook',
      paused: false,
      destination: `webhook:${new URL('/a', receiver.url).href}`,
      breaker_open: false,
    },
  ])
  assert.equal(a.stats.matched, 1)
  assert.equal(a.stats.succeeded, 1)
  assert.equal(a.stats.failed, 0)
  assert.equal(a.stats.in_dlq, 0)
  assert.equal(typeof a.stats.p50_ms, 'number')
  assert.ok(a.stats.p95_ms >= a.stats.p50_ms)
})

test('a reload with a broken file is rejected whole and the old set keeps running', async (t) => {
  const { dir, worker } = await workerOn(t, { 'a.json': hook('a', '/a') })
  const res = await rejectedReload(dir, worker)
  assert.equal(res.status, 422)
  assert.equal(res.body.applied, false)
  assert.deepEqual(res.body.observers, ['a'])
  assert.equal(res.body.problems.length, 1)
  assert.match(res.body.problems[0].file, /b\.json$/)
  assert.equal(res.body.problems[0].code, 'OB001')

  const ready = await api(worker.worker, '/readyz')
  assert.equal(ready.status, 503)
  assert.equal(ready.body.checks.observers.ok, false)
  assert.match(ready.body.checks.observers.problems[0].message, /invalid JSON/)
  assert.equal(ready.body.checks.database.ok, true)
  assert.deepEqual(await deliveredPaths(1), ['/a'], 'the unchanged old observer delivered')
  assert.ok(
    worker.logs.records.some((r) => r.level === 'error' && /reload rejected/.test(String(r.msg))),
    'the rejection is logged',
  )
})

test('a fixed directory reloads through the API and readiness recovers', async (t) => {
  const { dir, worker } = await workerOn(t, { 'a.json': hook('a', '/a') })
  assert.equal((await rejectedReload(dir, worker)).status, 422)
  assert.equal((await api(worker.worker, '/readyz')).status, 503, 'not ready after the rejected reload')
  await write(dir, 'b.json', hook('b', '/b'))
  const res = await api(worker.worker, '/api/observers/reload', { method: 'POST' })
  assert.equal(res.status, 200)
  assert.deepEqual(res.body, { applied: true, observers: ['a', 'b'], problems: [] })
  assert.equal((await api(worker.worker, '/readyz')).body.checks.observers.ok, true)
  // The other checks (the listener's connection, the dispatch lag) follow the worker's own pace.
  const ready = await eventually(
    async () => {
      const r = await api(worker.worker, '/readyz')
      return r.status === 200 ? r : undefined
    },
    patienceMs,
    'ready',
  )
  assert.deepEqual(Object.keys(ready.body.checks).sort(), [
    'database',
    'dispatch_lag',
    'listener',
    'observers',
  ])
  assert.deepEqual(await deliveredPaths(2), ['/a-changed', '/b'])
})

test('a change in OBSERVERS_DIR reloads by itself', async (t) => {
  const { dir, worker } = await workerOn(t, { 'a.json': hook('a', '/a'), 'b.json': hook('b', '/b') })
  await write(dir, 'c.json', hook('c', '/c'))
  await eventually(
    () => worker.worker.current().observers.some((o) => o.name === 'c'),
    patienceMs,
    'c loaded',
  )
  await rm(path.join(dir, 'b.json'))
  await eventually(() => worker.worker.current().observers.every((o) => o.name !== 'b'), patienceMs, 'b gone')
  assert.deepEqual(await deliveredPaths(2), ['/a', '/c'])
})

test('SIGHUP reloads a running worker, rejecting a broken set', async () => {
  const own = await createTestDatabase()
  await own.pool.query('create table items (id int primary key)')
  const hupDir = await observersDir({ 'a.json': hook('a', '/a') })
  const env = {
    DATABASE_URL: own.url,
    OBSERVERS_DIR: hupDir,
    PORT: String(await listenPort()),
    OBSERVERS_WATCH_DIR: 'false',
    OBSERVERS_CONCURRENCY: '2',
  }
  const child = spawnCli(['start'], env)
  let exit: Awaited<ReturnType<typeof exited>> | undefined
  try {
    await waitUntilReady(child, env.PORT)
    await writeFile(path.join(hupDir, 'b.json'), '[]')
    child.kill('SIGHUP')
    const rejected = await untilChild(
      child,
      async () => {
        const ready = await opsGet(env.PORT, '/readyz')
        return ready.status === 503 && ready.body.checks.observers
      },
      'readiness failing on the rejected reload',
    )
    assert.match(rejected.detail, /reload rejected with 1 problem/)
    assert.deepEqual(
      (await opsGet(env.PORT, '/api/observers')).body.observers.map((o: { name: string }) => o.name),
      ['a'],
      'the old set keeps running',
    )
    await writeFile(path.join(hupDir, 'b.json'), JSON.stringify(hook('b', '/b')))
    child.kill('SIGHUP')
    await untilChild(
      child,
      async () => {
        const { body } = await opsGet(env.PORT, '/api/observers')
        return body?.observers?.length === 2
      },
      'both observers running',
    )
    await waitUntilReady(child, env.PORT)
    child.kill('SIGTERM')
    exit = await exited(child)
  } finally {
    child.kill('SIGKILL')
    await exited(child)
    await own.drop()
  }
  assert.equal(exit?.code, 0, 'SIGTERM still exits 0')
})
