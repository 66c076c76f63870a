import net from 'node:net'

/** host and port of a service URL such as redis://127.0.0.1:6379. */
export function hostPort(url: string, defaultPort: number): { host: string; port: number } {
  const u = new URL(url)
  return { host: u.hostname, port: u.port ? Number(u.port) : defaultPort }
}

/** Why the service cannot be reached, or undefined when a TCP connection succeeds. */
export function unreachable(
  target: { host: string; port: number },
  timeoutMs = 1000,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(target.port, target.host)
    const done = (why: string | undefined) => {
      socket.destroy()
      resolve(why)
    }
    socket.setTimeout(timeoutMs, () => done(`no answer within ${timeoutMs} ms`))
    socket.once('connect', () => done(undefined))
    socket.once('error', (err) => done(err.message))
  })
}

/**
 * The `skip` option for tests that need a service: a reason when it is unreachable, false when
 * it is up. With REQUIRE_SERVICES=1 an unreachable service fails the run instead.
 */
export async function skipUnlessReachable(
  name: string,
  target: { host: string; port: number },
): Promise<string | false> {
  const why = await unreachable(target)
  if (!why) return false
  const message = `${name} unreachable at ${target.host}:${target.port} (${why})`
  if (process.env.REQUIRE_SERVICES === '1') throw new Error(`REQUIRE_SERVICES=1 but ${message}`)
  return message
}
