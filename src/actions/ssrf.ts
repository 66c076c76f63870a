import dns, { type LookupAddress } from 'node:dns'
import net from 'node:net'
import type { buildConnector } from 'undici'
import { ActionError, ErrorCode } from '../errors/errors.ts'
import { lazyModule } from '../runtime/lazy.ts'

const undici = lazyModule<typeof import('undici')>('undici')

/**
 * The guard behind OBSERVERS_BLOCK_PRIVATE_NETWORKS: HTTP actions may not reach loopback,
 * private, link-local, CGNAT or otherwise non-public addresses. It judges the address a
 * connection is about to use (after DNS), so a name that resolves differently later (DNS
 * rebinding) is judged again on every new connection.
 */

interface Range {
  name: string
  cidr: string
  base: bigint
  bits: number
}

function v4(text: string): bigint {
  return text.split('.').reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n)
}

/** An IPv6 address as a 128-bit integer; accepts `::` and a trailing dotted quad. */
function v6(text: string): bigint {
  const zone = text.indexOf('%')
  let body = zone < 0 ? text : text.slice(0, zone)
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(body)?.[1]
  if (quad) {
    const n = v4(quad)
    body = `${body.slice(0, -quad.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`
  }
  const [head = '', tail] = body.split('::')
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const groups = [...left, ...Array(8 - left.length - right.length).fill('0'), ...right]
  return groups.reduce((n, g) => (n << 16n) | BigInt(Number.parseInt(g, 16)), 0n)
}

function range4(name: string, cidr: string): Range {
  const [base = '', bits = ''] = cidr.split('/')
  return { name, cidr, base: v4(base), bits: Number(bits) }
}

function range6(name: string, cidr: string): Range {
  const [base = '', bits = ''] = cidr.split('/')
  return { name, cidr, base: v6(base), bits: Number(bits) }
}

/*
 * The IANA IPv4 and IPv6 Special-Purpose Address Registries: every entry whose "Globally
 * Reachable" is False (plus multicast and deprecated site-local, which no HTTP action needs).
 * The few globally reachable entries nested inside a blocked one are listed as exceptions.
 */
const ipv4Ranges: Range[] = [
  range4('this-network', '0.0.0.0/8'),
  range4('private', '10.0.0.0/8'),
  range4('shared (CGNAT)', '100.64.0.0/10'),
  range4('loopback', '127.0.0.0/8'),
  range4('link-local', '169.254.0.0/16'),
  range4('private', '172.16.0.0/12'),
  range4('IETF protocol assignments', '192.0.0.0/24'),
  range4('documentation (TEST-NET-1)', '192.0.2.0/24'),
  range4('6to4 relay anycast (deprecated)', '192.88.99.0/24'),
  range4('private', '192.168.0.0/16'),
  range4('benchmarking', '198.18.0.0/15'),
  range4('documentation (TEST-NET-2)', '198.51.100.0/24'),
  range4('documentation (TEST-NET-3)', '203.0.113.0/24'),
  range4('multicast', '224.0.0.0/4'),
  range4('reserved', '240.0.0.0/4'),
]

/** Globally reachable entries inside a blocked IPv4 range (PCP and TURN anycast). */
const ipv4Reachable: Range[] = [
  range4('PCP anycast', '192.0.0.9/32'),
  range4('TURN anycast', '192.0.0.10/32'),
]

const ipv6Ranges: Range[] = [
  range6('unspecified', '::/128'),
  range6('loopback', '::1/128'),
  range6('local-use IPv4/IPv6 translation', '64:ff9b:1::/48'),
  range6('discard-only', '100::/64'),
  range6('dummy prefix', '100:0:0:1::/64'),
  range6('IETF protocol assignments', '2001::/23'),
  range6('documentation', '2001:db8::/32'),
  range6('documentation', '3fff::/20'),
  range6('segment routing SIDs', '5f00::/16'),
  range6('unique local', 'fc00::/7'),
  range6('link-local', 'fe80::/10'),
  range6('site-local', 'fec0::/10'),
  range6('multicast', 'ff00::/8'),
]

/** Globally reachable entries inside 2001::/23. */
const ipv6Reachable: Range[] = [
  range6('PCP anycast', '2001:1::1/128'),
  range6('TURN anycast', '2001:1::2/128'),
  range6('DNS-SD SRP anycast', '2001:1::3/128'),
  range6('AMT', '2001:3::/32'),
  range6('AS112-v6', '2001:4:112::/48'),
  range6('ORCHIDv2', '2001:20::/28'),
  range6('drone remote ID', '2001:30::/28'),
]

/** IPv6 forms that carry an IPv4 address, which is then judged as IPv4; `shift` finds it. */
const embeddings: Array<Range & { shift: bigint }> = [
  { ...range6('IPv4-mapped', '::ffff:0:0/96'), shift: 0n },
  { ...range6('IPv4-compatible', '::/96'), shift: 0n },
  { ...range6('NAT64', '64:ff9b::/96'), shift: 0n },
  { ...range6('6to4', '2002::/16'), shift: 80n },
]

function inRange(n: bigint, width: number, r: Range): boolean {
  const drop = BigInt(width - r.bits)
  return n >> drop === r.base >> drop
}

function formatV4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.')
}

function describe(r: Range): string {
  return `${r.name} range ${r.cidr}`
}

/** Which blocked range `address` lies in (e.g. "loopback range 127.0.0.0/8"), or undefined if public. */
export function blockedRange(address: string): string | undefined {
  const family = net.isIP(address.split('%')[0] ?? '')
  if (family === 4) {
    const n = v4(address)
    if (ipv4Reachable.some((r) => inRange(n, 32, r))) return undefined
    const r = ipv4Ranges.find((r) => inRange(n, 32, r))
    return r && describe(r)
  }
  if (family !== 6) return 'not an IP address'
  const n = v6(address)
  if (ipv6Reachable.some((r) => inRange(n, 128, r))) return undefined
  const direct = ipv6Ranges.find((r) => inRange(n, 128, r))
  if (direct) return describe(direct)
  for (const e of embeddings) {
    if (!inRange(n, 128, e)) continue
    const embedded = formatV4((n >> e.shift) & 0xffffffffn)
    const range = blockedRange(embedded)
    if (range) return `${range} (${e.name} ${embedded})`
  }
  return undefined
}

/** A refused destination: permanent (OB007), naming the address and why. */
export class BlockedAddressError extends ActionError {
  readonly address: string
  readonly range: string
  constructor(address: string, range: string, host: string) {
    const target = host === address ? address : `${host} (${address})`
    super(`connection to ${target} refused: ${range} is blocked (OBSERVERS_BLOCK_PRIVATE_NETWORKS)`, {
      retryable: false,
      code: ErrorCode.ActionFailedPermanent,
    })
    this.address = address
    this.range = range
  }
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void

/**
 * A `dns.lookup` for net.connect that fails when any address the name resolves to is blocked,
 * so happy-eyeballs cannot fall through to a private address either.
 */
export function guardedLookup(lookup: typeof dns.lookup = dns.lookup) {
  return (hostname: string, options: dns.LookupOptions, callback: LookupCallback): void => {
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, [])
      for (const a of addresses) {
        const range = blockedRange(a.address)
        if (range) return callback(new BlockedAddressError(a.address, range, hostname), [])
      }
      if (options.all) return callback(null, addresses)
      const first = addresses[0]
      if (!first)
        return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), [])
      callback(null, first.address, first.family)
    })
  }
}

/**
 * An undici connector that refuses blocked destinations before any packet is sent: IP
 * literals are judged here (net.connect does no lookup for them), names by guardedLookup.
 */
export function guardedConnector(options: {
  timeoutMs: number
  lookup?: typeof dns.lookup
}): buildConnector.connector {
  const connect = undici().buildConnector({
    timeout: options.timeoutMs,
    lookup: guardedLookup(options.lookup),
  })
  return (opts, callback) => {
    const range = net.isIP(opts.hostname) ? blockedRange(opts.hostname) : undefined
    if (range) {
      const err = new BlockedAddressError(opts.hostname, range, opts.hostname)
      process.nextTick(() => callback(err, null))
      return
    }
    connect(opts, callback)
  }
}
