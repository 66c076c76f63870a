import net from 'node:net'

// Below Linux's ephemeral range (32768–60999 by default), where the OS takes the local port of
// every outgoing connection: a port the OS handed out as free there can be taken by a test's
// Postgres or HTTP client before the process meant to listen on it starts, which two suites side
// by side made happen. Here only another explicit listener can take it.
const lowest = 20_000
const highest = 32_767

function tryListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.unref()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** A port nothing listens on, for a process a test starts to listen on (a worker's PORT, a proxy). */
export async function listenPort(): Promise<number> {
  for (;;) {
    const port = lowest + Math.floor(Math.random() * (highest - lowest + 1))
    if (await tryListen(port)) return port
  }
}
