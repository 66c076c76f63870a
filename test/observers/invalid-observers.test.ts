import assert from 'node:assert/strict'
import { copyFile, readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { describeError } from '../../src/errors/errors.ts'
import { loadObservers, parseObserver } from '../../src/observers/load.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts'
import { exited, spawnCli } from '../helpers/process.ts'
import { type Receiver, startReceiver } from '../helpers/receiver.ts'
import { eventually, observersDir, runWorker } from '../helpers/worker.ts'

const fixtures = path.resolve(import.meta.dirname, '../fixtures')
const corpus = path.join(fixtures, 'observers-invalid')

/** One broken observer file: the code and JSON path it must be rejected with, and why. */
interface Expectation {
  code: string
  path: string
  problem: string
  /** A fragment the message must contain, where the path alone says too little. */
  message?: string
}

let manifest: Record<string, Expectation>
let files: string[]

before(async () => {
  manifest = JSON.parse(await readFile(path.join(fixtures, 'observers-invalid.manifest.json'), 'utf8'))
  files = (await readdir(corpus)).filter((f) => f.endsWith('.json')).sort()
})

test('the corpus has at least 100 broken files, each described in the manifest', () => {
  assert.ok(files.length >= 100, `${files.length} files`)
  assert.deepEqual(files, Object.keys(manifest).sort())
})

test('each broken file is rejected with its OB code and JSON path, and nothing throws', async () => {
  const misses: string[] = []
  for (const file of files) {
    const want = manifest[file]!
    const full = path.join(corpus, file)
    const result = parseObserver(full, await readFile(full, 'utf8'))
    if (!('problems' in result)) {
      misses.push(`${file}: accepted (${want.problem})`)
      continue
    }
    const hit = result.problems.find(
      (p) => p.code === want.code && p.path === want.path && p.message.includes(want.message ?? ''),
    )
    if (!hit) {
      const got = result.problems.map((p) => `${p.code} ${p.path || '(file)'}: ${p.message}`).join('; ')
      misses.push(`${file}: want ${want.code} at ${want.path || '(file)'} (${want.problem}); got ${got}`)
    }
    for (const p of result.problems) {
      if (!describeError(p).startsWith(`${p.code}: ${full}`))
        misses.push(`${file}: message lacks code or file: ${describeError(p)}`)
    }
  }
  console.log(
    `malformed observer corpus: ${files.length - misses.length} of ${files.length} files rejected as expected`,
  )
  assert.deepEqual(misses, [])
})

test('loading the whole corpus as a directory reports every file and loads none', async () => {
  const { observers, problems } = await loadObservers(corpus)
  assert.equal(observers.length, 0)
  const reported = new Set(problems.map((p) => path.basename(p.file)))
  assert.deepEqual([...reported].sort(), files)
})

test('`observers validate` on the corpus lists the problems and exits 2', async () => {
  const child = spawnCli(['validate', corpus], {})
  const { code } = await exited(child)
  const output = child.output.join('')
  assert.equal(code, 2, output.slice(-2000))
  assert.match(output, /0 observer\(s\) valid, \d+ problem\(s\)/)
  assert.match(output, /OB003: .*condition-double-operator\.json at \/condition/)
})

let db: TestDatabase
let receiver: Receiver

before(async () => {
  db = await createTestDatabase()
  receiver = await startReceiver()
  await db.pool.query('create table orders (id int primary key)')
})

after(async () => {
  await receiver?.close()
  await db?.drop()
})

test('a worker started on the corpus plus one good observer delivers for the good one', async (t) => {
  const dir = await observersDir({
    'zz-good.json': {
      name: 'good',
      entity: 'orders',
      events: ['INSERT'],
      actions: [{ type: 'webhook', url: `${receiver.url}/good` }],
    },
  })
  for (const file of files) await copyFile(path.join(corpus, file), path.join(dir, file))
  const w = await runWorker(db.url, dir)
  t.after(() => w.stop())
  assert.deepEqual(
    w.worker.current().observers.map((o) => o.name),
    ['good'],
  )
  await db.pool.query('insert into orders values (1)')
  await eventually(() => receiver.requests.some((r) => r.path === '/good'), 20_000, 'the good observer fires')
  const logged = new Set(
    w.logs.records
      .filter((r) => /^OB0\d\d$/.test(String(r.code)) && r.file)
      .map((r) => path.basename(String(r.file))),
  )
  assert.deepEqual(
    files.filter((f) => !logged.has(f)),
    [],
    'every broken file was logged with its code',
  )
})
