import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ConfigError } from '../../src/errors/errors.ts'
import { isLoopback } from '../../src/ops/auth.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { exited, spawnCli } from '../helpers/process.ts'
import { observersDir, runWorker, type TestWorker } from '../helpers/worker.ts'
import { api } from './helpers.ts'

const token = 'tok_6f1d2c9e8b7a4f30a1b2c3d4'
let db: TestDatabase
let dir: string
let worker: TestWorker

before(async () => {
  db = await createTestDatabase()
  dir = await observersDir({})
  worker = await runWorker(db.url, dir, { HOST: '0.0.0.0', OBSERVERS_API_TOKEN: token })
})

after(async () => {
  await worker?.stop()
  await db?.drop()
})

test('loopback means 127.0.0.0/8, ::1 and localhost', () => {
  for (const host of ['127.0.0.1', '127.8.9.10', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'])
    assert.equal(isLoopback(host), true, host)
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', 'example.com', '128.0.0.1'])
    assert.equal(isLoopback(host), false, host)
})

test('every /api route answers 401 JSON without the token or with a wrong one', async () => {
  const routes: Array<[string, string]> = [
    ['GET', '/api/observers'],
    ['POST', '/api/observers/reload'],
    ['GET', '/api/dlq'],
    ['GET', '/api/dlq/00000000-0000-0000-0000-000000000000'],
    ['POST', '/api/dlq/retry'],
    ['POST', '/api/dlq/00000000-0000-0000-0000-000000000000/retry'],
    ['DELETE', '/api/dlq/00000000-0000-0000-0000-000000000000'],
    ['GET', '/api/stream'],
  ]
  for (const [method, path] of routes) {
    for (const wrong of [undefined, 'nope', `${token}x`, token.slice(0, -1)]) {
      const res = await api(worker.worker, path, { method, ...(wrong === undefined ? {} : { token: wrong }) })
      assert.equal(res.status, 401, `${method} ${path} with ${wrong ?? 'no token'}`)
      assert.equal(res.body.code, 'unauthorized')
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/)
    }
  }
})

test('the right token is accepted; health, readiness and metrics need none', async () => {
  const ok = await api(worker.worker, '/api/observers', { token })
  assert.equal(ok.status, 200)
  assert.deepEqual(ok.body.observers, [])
  assert.equal((await api(worker.worker, '/api/dlq', { token })).status, 200)
  assert.equal((await api(worker.worker, '/healthz')).status, 200)
  assert.equal((await api(worker.worker, '/metrics')).status, 200)
  const ready = await api(worker.worker, '/readyz')
  assert.equal(typeof ready.body.checks.database.ok, 'boolean')
})

test('a worker bound beyond loopback without a token refuses to start (OB001)', async () => {
  await assert.rejects(runWorker(db.url, dir, { HOST: '0.0.0.0' }), (err: Error) => {
    assert.ok(err instanceof ConfigError)
    assert.equal(err.code, 'OB001')
    assert.match(err.message, /OBSERVERS_API_TOKEN/)
    return true
  })
  const cli = spawnCli(['start'], { DATABASE_URL: db.url, OBSERVERS_DIR: dir, HOST: '0.0.0.0', PORT: '0' })
  const { code } = await exited(cli)
  assert.equal(code, 2)
  assert.match(cli.output.join(''), /OB001: HOST=0\.0\.0\.0 exposes the ops API/)
})
