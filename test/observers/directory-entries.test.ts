import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, rm, symlink } from 'node:fs/promises'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { loadObservers } from '../../src/observers/load.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { observersDir, runWorker } from '../helpers/worker.ts'
import { api } from '../ops/helpers.ts'

const good = {
  name: 'good',
  entity: 'orders',
  events: ['INSERT'],
  actions: [{ type: 'log' }],
}

let db: TestDatabase

before(async () => {
  db = await createTestDatabase('create table orders (id int primary key)')
})

after(async () => {
  await db?.drop()
})

/** good.json plus a dangling symlink, a directory and a FIFO, all named `*.json`. */
async function oddDirectory(): Promise<string> {
  const dir = await observersDir({ 'good.json': good })
  await symlink(path.join(dir, 'gone.json'), path.join(dir, 'dangling.json'))
  await mkdir(path.join(dir, 'folder.json'))
  execFileSync('mkfifo', [path.join(dir, 'pipe.json')])
  return dir
}

function problemsByFile(problems: readonly { code: string; file: string; message: string }[]) {
  return problems.map((p) => [path.basename(p.file), p.code]).sort()
}

const expectedProblems = [
  ['dangling.json', 'OB001'],
  ['folder.json', 'OB001'],
  ['pipe.json', 'OB001'],
]

test('dangling links, directories and FIFOs named *.json are problems of their own; the rest loads', {
  timeout: 30_000,
}, async () => {
  const { observers, problems } = await loadObservers(await oddDirectory())
  assert.deepEqual(
    observers.map((o) => o.name),
    ['good'],
  )
  assert.deepEqual(problemsByFile(problems), expectedProblems)
  const byName = new Map(problems.map((p) => [path.basename(p.file), p.message]))
  assert.match(byName.get('folder.json')!, /not a regular file \(a directory\)/)
  assert.match(byName.get('pipe.json')!, /not a regular file \(a FIFO\)/)
  assert.match(byName.get('dangling.json')!, /cannot read: ENOENT/)
})

test('a worker starts beside such entries, and a reload reports them (422) instead of failing', {
  timeout: 60_000,
}, async (t) => {
  const dir = await oddDirectory()
  const w = await runWorker(db.url, dir)
  t.after(() => w.stop())
  assert.deepEqual(
    w.worker.current().observers.map((o) => o.name),
    ['good'],
  )
  assert.deepEqual(problemsByFile(w.worker.current().problems), expectedProblems)
  const res = await api(w.worker, '/api/observers/reload', { method: 'POST' })
  assert.equal(res.status, 422)
  assert.deepEqual(problemsByFile(res.body.problems), expectedProblems)
  await rm(path.join(dir, 'pipe.json'))
  await rm(path.join(dir, 'folder.json'), { recursive: true })
  await rm(path.join(dir, 'dangling.json'))
  const fixed = await api(w.worker, '/api/observers/reload', { method: 'POST' })
  assert.equal(fixed.status, 200)
})
