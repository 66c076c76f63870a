import net from 'node:net'

/**
 * A TCP relay in front of a real server, so a test can cut the network (refuse and drop every
 * connection) and restore it, as an outage between the worker and Redis or NATS would.
 */
export interface TcpProxy {
  port: number
  /** Bytes clients have sent through the relay: zero growth means no request reached the server. */
  readonly bytesFromClients: number
  /** Drops every open connection and refuses new ones until `restore()`. */
  cut(): void
  /**
   * Stops forwarding on every open connection but keeps its sockets open, as a NAT or firewall
   * that silently forgets a flow does, and refuses new connections until `restore()`.
   */
  blackhole(): void
  restore(): void
  /** Holds what clients send (the server never sees it, so they wait on it) until `resume()`. */
  stall(): void
  resume(): void
  close(): Promise<void>
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const open = new Set<net.Socket>()
  const pairs = new Set<[net.Socket, net.Socket]>()
  // Black-holed sockets: whatever happens to one side never reaches the other.
  const holed = new Set<net.Socket>()
  let down = false
  let bytesFromClients = 0
  let stalled = false
  const held: Array<() => void> = []
  const server = net.createServer((client) => {
    if (down) {
      client.destroy()
      return
    }
    const upstream = net.connect(target.port, target.host)
    for (const s of [client, upstream]) {
      open.add(s)
      s.on('close', () => open.delete(s))
      s.on('error', () => {
        if (holed.has(s)) return s.destroy()
        client.destroy()
        upstream.destroy()
      })
    }
    const pair: [net.Socket, net.Socket] = [client, upstream]
    pairs.add(pair)
    client.on('close', () => pairs.delete(pair))
    client.on('data', (chunk: Buffer) => {
      bytesFromClients += chunk.length
      if (stalled) held.push(() => upstream.write(chunk))
      else upstream.write(chunk)
    })
    client.on('end', () => upstream.end())
    upstream.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  return {
    port,
    get bytesFromClients() {
      return bytesFromClients
    },
    cut() {
      down = true
      for (const s of open) s.destroy()
    },
    blackhole() {
      down = true
      for (const [client, upstream] of pairs) {
        upstream.unpipe(client)
        client.pause()
        upstream.pause()
        holed.add(client).add(upstream)
      }
      pairs.clear()
    },
    restore() {
      down = false
    },
    stall() {
      stalled = true
    },
    resume() {
      stalled = false
      for (const send of held.splice(0)) send()
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy()
        server.close(() => resolve())
      }),
  }
}
