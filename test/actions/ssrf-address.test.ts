import assert from 'node:assert/strict'
import type dns from 'node:dns'
import { test } from 'node:test'
import { Agent, request } from 'undici'
import { BlockedAddressError, blockedRange, guardedConnector, guardedLookup } from '../../src/actions/ssrf.ts'
import { startReceiver } from '../helpers/receiver.ts'

const blocked = [
  '127.0.0.1',
  '127.255.255.254',
  '10.0.0.1',
  '10.255.255.255',
  '172.16.0.1',
  '172.31.255.255',
  '192.168.0.1',
  '192.168.255.255',
  '169.254.169.254',
  '100.64.0.1',
  '100.127.255.255',
  '0.0.0.0',
  '0.1.2.3',
  '224.0.0.1',
  '255.255.255.255',
  '::1',
  '::',
  'fc00::1',
  'fd12:3456:789a::1',
  'fe80::1',
  'fe80::1%eth0',
  'febf:ffff::1',
  'ff02::1',
  '::ffff:127.0.0.1',
  '::ffff:7f00:1',
  '::ffff:10.1.2.3',
  '::ffff:169.254.169.254',
  '::127.0.0.1',
  '64:ff9b::a9fe:a9fe',
  '2002:a9fe:a9fe::1',
  // IANA special-purpose entries that are not globally reachable
  '192.0.2.1',
  '198.51.100.7',
  '203.0.113.255',
  '192.88.99.1',
  '192.0.0.8',
  '198.19.255.255',
  '2001:db8::1',
  '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff',
  '100::1',
  '100::ffff:ffff:ffff:ffff',
  '100:0:0:1::1',
  '64:ff9b:1::a00:1',
  '64:ff9b:1:ffff::1',
  '2001::1',
  '2001:2::1',
  '2001:10::1',
  '3fff::1',
  '5f00::1',
  '::ffff:192.0.2.1',
  '64:ff9b::c000:201',
]

const allowed = [
  '8.8.8.8',
  '1.1.1.1',
  '11.0.0.1',
  '172.15.255.255',
  '172.32.0.0',
  '100.63.255.255',
  '100.128.0.0',
  '169.255.0.1',
  '192.169.0.1',
  '2001:4860:4860::8888',
  '2606:4700::1111',
  '::ffff:8.8.8.8',
  '64:ff9b::808:808',
  '2002:808:808::1',
  // globally reachable entries of the registries, some nested in blocked ones
  '192.0.0.9',
  '192.0.0.10',
  '192.31.196.1',
  '192.52.193.1',
  '192.175.48.1',
  '192.0.3.1',
  '198.51.101.1',
  '203.0.114.1',
  '2001:1::1',
  '2001:3::1',
  '2001:4:112::1',
  '2001:20::1',
  '2001:db9::1',
  '101::1',
  '64:ff9b:2::1',
  '2620:4f:8000::1',
]

test('the address classifier blocks loopback, private, link-local, CGNAT, unspecified and their IPv6 forms', () => {
  for (const a of blocked) assert.ok(blockedRange(a), `${a} is blocked`)
  for (const a of allowed) assert.equal(blockedRange(a), undefined, `${a} is allowed`)
  assert.equal(blockedRange('169.254.169.254'), 'link-local range 169.254.0.0/16')
  assert.equal(blockedRange('100.64.0.1'), 'shared (CGNAT) range 100.64.0.0/10')
  assert.equal(blockedRange('::ffff:127.0.0.1'), 'loopback range 127.0.0.0/8 (IPv4-mapped 127.0.0.1)')
  assert.equal(blockedRange('fd00::1'), 'unique local range fc00::/7')
  assert.equal(blockedRange('203.0.113.9'), 'documentation (TEST-NET-3) range 203.0.113.0/24')
  assert.equal(blockedRange('2001:db8::1'), 'documentation range 2001:db8::/32')
})

/** A resolver that answers from a script, one answer per call, without touching the network. */
function scriptedLookup(answers: string[][]): typeof dns.lookup {
  let call = 0
  const lookup = (_host: string, _opts: unknown, cb: (e: null, a: dns.LookupAddress[]) => void) => {
    const addresses = answers[Math.min(call++, answers.length - 1)]!
    cb(
      null,
      addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    )
  }
  return lookup as unknown as typeof dns.lookup
}

function lookupOnce(lookup: ReturnType<typeof guardedLookup>, all = false) {
  return new Promise<unknown>((resolve, reject) =>
    lookup('rebind.test', { all }, (err, address) => (err ? reject(err) : resolve(address))),
  )
}

test('every lookup is judged again: a name that rebinds to a private address is refused', async () => {
  const lookup = guardedLookup(scriptedLookup([['93.184.216.34'], ['169.254.169.254']]))
  assert.equal(await lookupOnce(lookup), '93.184.216.34')
  await assert.rejects(lookupOnce(lookup), (err: unknown) => {
    assert.ok(err instanceof BlockedAddressError)
    assert.equal(err.address, '169.254.169.254')
    assert.equal(err.code, 'OB007')
    assert.match(err.message, /^connection to rebind\.test \(169\.254\.169\.254\) refused: link-local/)
    return true
  })
  const mixed = guardedLookup(scriptedLookup([['93.184.216.34', '10.0.0.7']]))
  await assert.rejects(
    lookupOnce(mixed, true),
    /10\.0\.0\.7/,
    'one private answer among public ones is enough',
  )
})

test('the connector refuses at connect time, before any packet, when the name resolves to loopback', async (t) => {
  const receiver = await startReceiver()
  t.after(() => receiver.close())
  const port = new URL(receiver.url).port
  const agent = new Agent({
    connect: guardedConnector({ timeoutMs: 2000, lookup: scriptedLookup([['127.0.0.1']]) }),
  })
  t.after(() => agent.close())
  await assert.rejects(request(`http://rebind.test:${port}/`, { dispatcher: agent }), BlockedAddressError)
  assert.equal(receiver.requests.length, 0)
})
