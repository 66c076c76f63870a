import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { listenPort } from './ports.ts'
import { unreachable } from './services.ts'

/** A PgBouncer process of the test's own, in transaction mode, in front of `target`'s server. */
export interface PgBouncer {
  /** `target` with host and port replaced by the pooler's. */
  url(target: string): string
  /** Its admin console (`SHOW CLIENTS`, ...). */
  adminUrl: string
  /** Whether it keeps protocol-level named prepared statements (PgBouncer >= 1.21). */
  preparedStatements: boolean
  stop(): Promise<void>
}

const candidates = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer']

export function pgbouncerBinary(): string | undefined {
  return candidates.find((p) => existsSync(p))
}

/**
 * The `skip` option for tests that need PgBouncer (Debian's `pgbouncer` package): a reason when
 * it is not installed. With REQUIRE_SERVICES=1 (CI) its absence fails the run instead.
 */
export function skipUnlessPgbouncer(): string | false {
  if (pgbouncerBinary()) return false
  const message = `pgbouncer not installed (apt-get install -y pgbouncer); looked in ${candidates.join(', ')}`
  if (process.env.REQUIRE_SERVICES === '1') throw new Error(`REQUIRE_SERVICES=1 but ${message}`)
  return message
}

function version(binary: string): [number, number] {
  const out = execFileSync(binary, ['--version'], { encoding: 'utf8' })
  const m = /PgBouncer (\d+)\.(\d+)/.exec(out)
  return m ? [Number(m[1]), Number(m[2])] : [0, 0]
}

export async function startPgbouncer(target: string): Promise<PgBouncer> {
  const binary = pgbouncerBinary()
  if (!binary) throw new Error('pgbouncer is not installed')
  const [major, minor] = version(binary)
  const preparedStatements = major > 1 || (major === 1 && minor >= 21)
  const server = new URL(target)
  const user = decodeURIComponent(server.username) || 'postgres'
  const port = await listenPort()
  const dir = await mkdtemp(path.join(tmpdir(), 'pgbouncer-'))
  // PgBouncer refuses to run as root; started as root it switches to `postgres`, which must read these.
  await chmod(dir, 0o755)
  await writeFile(path.join(dir, 'userlist.txt'), `"${user}" ""\n`, { mode: 0o644 })
  const ini = [
    '[databases]',
    `* = host=${server.hostname} port=${server.port || 5432}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = trust',
    `auth_file = ${path.join(dir, 'userlist.txt')}`,
    `admin_users = ${user}`,
    'pool_mode = transaction',
    'default_pool_size = 20',
    'max_client_conn = 200',
    'ignore_startup_parameters = extra_float_digits,options',
    // Named prepared statements survive transaction pooling only from 1.21 on.
    ...(preparedStatements ? ['max_prepared_statements = 200'] : []),
  ]
  const iniFile = path.join(dir, 'pgbouncer.ini')
  await writeFile(iniFile, `${ini.join('\n')}\n`, { mode: 0o644 })
  const asRoot = process.getuid?.() === 0
  const child: ChildProcess = spawn(binary, [...(asRoot ? ['-u', 'postgres'] : []), iniFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output: string[] = []
  child.stdout?.on('data', (d: Buffer) => output.push(d.toString()))
  child.stderr?.on('data', (d: Buffer) => output.push(d.toString()))
  const reap = () => child.kill('SIGKILL')
  process.once('exit', reap)
  const deadline = Date.now() + 15_000
  while (await unreachable({ host: '127.0.0.1', port }, 500)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`pgbouncer did not start:\n${output.join('')}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  const url = (t: string) => {
    const u = new URL(t)
    u.hostname = '127.0.0.1'
    u.port = String(port)
    return u.toString()
  }
  return {
    url,
    adminUrl: url(`postgres://${encodeURIComponent(user)}@127.0.0.1/pgbouncer`),
    preparedStatements,
    async stop() {
      process.off('exit', reap)
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        await new Promise((r) => child.once('exit', r))
      }
      await rm(dir, { recursive: true, force: true })
    },
  }
}
