import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'

const root = path.resolve(import.meta.dirname, '../..')

/** The client libraries of the actions: only a delivery needs them. */
const integrations = [
  'undici',
  'redis',
  '@redis/client',
  '@nats-io/transport-node',
  '@nats-io/jetstream',
  'nodemailer',
  'google-auth-library',
  'web-push',
  'pino-pretty',
]

let dir: string

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'observers-startup-'))
  // Preloaded into the CLI: on exit, writes the CommonJS files the process loaded.
  await writeFile(
    path.join(dir, 'report.cjs'),
    `process.on('exit', () => {
      require('node:fs').writeFileSync(${JSON.stringify(path.join(dir, 'loaded.json'))}, JSON.stringify(Object.keys(require.cache)))
    })`,
  )
})

after(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Runs the package bin on this Node; resolves with its exit code and the files and packages it loaded. */
async function run(
  args: string[],
): Promise<{ code: number | null; files: string[]; loaded: string[]; stderr: string }> {
  const child = spawn(process.execPath, [path.join(root, 'bin/observers.js'), ...args], {
    cwd: root,
    env: { ...process.env, NODE_OPTIONS: `--require ${path.join(dir, 'report.cjs')}` },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString('utf8')
  })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  const files = JSON.parse(await readFile(path.join(dir, 'loaded.json'), 'utf8')) as string[]
  const loaded = [...new Set(files.flatMap((f) => f.match(/node_modules\/((@[^/]+\/)?[^/]+)\//)?.[1] ?? []))]
  return { code, files, loaded, stderr }
}

test('observers --help loads none of the delivery client libraries', async () => {
  const { code, loaded, stderr } = await run(['--help'])
  assert.equal(code, 0, stderr)
  assert.deepEqual(
    integrations.filter((p) => loaded.includes(p)),
    [],
  )
})

test('observers validate checks every action type with the generated validator, loading neither their client libraries nor the schema compiler', async () => {
  const { code, files, loaded, stderr } = await run(['validate', path.join(root, 'observers/examples')])
  assert.equal(code, 0, stderr)
  assert.ok(loaded.includes('commander'), 'the report sees what the CLI loads')
  assert.deepEqual(
    integrations.filter((p) => loaded.includes(p)),
    [],
  )
  assert.ok(files.includes(path.join(root, 'src/observers/observer-validator.cjs')))
  assert.deepEqual(
    files.filter((f) => f.includes('/node_modules/ajv/dist/compile/')),
    [],
  )
})
