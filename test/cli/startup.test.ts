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
  // Preloaded into the CLI: on exit, writes the packages the process loaded.
  await writeFile(
    path.join(dir, 'report.cjs'),
    `process.on('exit', () => {
      const names = new Set()
      for (const file of Object.keys(require.cache)) {
        const m = file.match(/node_modules\\/((@[^/]+\\/)?[^/]+)\\//)
        if (m) names.add(m[1])
      }
      require('node:fs').writeFileSync(${JSON.stringify(path.join(dir, 'loaded.json'))}, JSON.stringify([...names]))
    })`,
  )
})

after(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Runs the package bin on this Node; resolves with its exit code and the packages it loaded. */
async function run(args: string[]): Promise<{ code: number | null; loaded: string[]; stderr: string }> {
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
  const loaded = JSON.parse(await readFile(path.join(dir, 'loaded.json'), 'utf8')) as string[]
  return { code, loaded, stderr }
}

test('observers --help loads none of the delivery client libraries', async () => {
  const { code, loaded, stderr } = await run(['--help'])
  assert.equal(code, 0, stderr)
  assert.deepEqual(
    integrations.filter((p) => loaded.includes(p)),
    [],
  )
})

test('observers validate checks every action type without loading their client libraries', async () => {
  const { code, loaded, stderr } = await run(['validate', path.join(root, 'observers/examples')])
  assert.equal(code, 0, stderr)
  assert.ok(loaded.includes('commander'), 'the report sees what the CLI loads')
  assert.deepEqual(
    integrations.filter((p) => loaded.includes(p)),
    [],
  )
})
