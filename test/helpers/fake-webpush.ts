import { createDecipheriv, createECDH, type ECDH, hkdfSync, randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose'

/** A VAPID key pair as the web-push tooling writes it: raw P-256 keys, base64url. */
export function generateVapidKeys(): { publicKey: string; privateKey: string } {
  const ecdh = createECDH('prime256v1')
  ecdh.generateKeys()
  return {
    publicKey: ecdh.getPublicKey().toString('base64url'),
    // getPrivateKey drops leading zero bytes; VAPID wants all 32.
    privateKey: Buffer.from(ecdh.getPrivateKey().toString('hex').padStart(64, '0'), 'hex').toString(
      'base64url',
    ),
  }
}

export interface PushSubscription {
  endpoint: string
  keys: { p256dh: string; auth: string }
}

export interface ReceivedPush {
  at: number
  path: string
  headers: http.IncomingHttpHeaders
  /** The VAPID JWT's claims, verified with the `k` public key of the Authorization header. */
  vapid: { claims: Record<string, unknown>; publicKey: string; alg: string | undefined } | undefined
  /** The payload decrypted with the subscription's private key (RFC 8291 aes128gcm); undefined if it does not decrypt. */
  payload: string | undefined
}

export type PushReply = { status: number; headers?: Record<string, string>; body?: string }

export interface FakePushService {
  origin: string
  pushes: ReceivedPush[]
  /** A browser-side subscription (fresh P-256 keys and auth secret) at /push/<name>. */
  subscribe(name: string): PushSubscription
  reply(script: PushReply[] | ((p: ReceivedPush) => PushReply)): void
  close(): Promise<void>
}

interface Subscriber {
  ecdh: ECDH
  auth: Buffer
}

async function verifyVapid(authorization: string | undefined): Promise<ReceivedPush['vapid']> {
  const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(authorization ?? '')
  if (!m?.[1] || !m[2]) return undefined
  const point = Buffer.from(m[2], 'base64url')
  const key = await importJWK(
    {
      kty: 'EC',
      crv: 'P-256',
      x: point.subarray(1, 33).toString('base64url'),
      y: point.subarray(33, 65).toString('base64url'),
    },
    'ES256',
  )
  const { payload } = await jwtVerify(m[1], key)
  return { claims: payload, publicKey: m[2], alg: decodeProtectedHeader(m[1]).alg }
}

/** RFC 8188 content coding with the RFC 8291 key derivation. */
export function decryptAes128gcm(body: Buffer, sub: Subscriber): string {
  const salt = body.subarray(0, 16)
  const recordSize = body.readUInt32BE(16)
  const idLength = body.readUInt8(20)
  const serverPublic = body.subarray(21, 21 + idLength)
  const clientPublic = sub.ecdh.getPublicKey()
  const shared = sub.ecdh.computeSecret(serverPublic)
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), clientPublic, serverPublic])
  const ikm = Buffer.from(hkdfSync('sha256', shared, sub.auth, keyInfo, 32))
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16))
  const baseNonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12))
  const records = body.subarray(21 + idLength)
  const out: Buffer[] = []
  for (let offset = 0, seq = 0; offset < records.length; offset += recordSize, seq++) {
    const record = records.subarray(offset, Math.min(offset + recordSize, records.length))
    const nonce = Buffer.from(baseNonce)
    nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ seq) >>> 0, 8)
    const decipher = createDecipheriv('aes-128-gcm', cek, nonce)
    decipher.setAuthTag(record.subarray(record.length - 16))
    const plain = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()])
    let end = plain.length - 1
    while (end >= 0 && plain[end] === 0) end--
    if (plain[end] !== 1 && plain[end] !== 2) throw new Error('bad record padding delimiter')
    out.push(plain.subarray(0, end))
  }
  return Buffer.concat(out).toString('utf8')
}

/** A local push service: records each push, verifies VAPID, decrypts, and answers from a script. */
export async function startPushService(): Promise<FakePushService> {
  const subscribers = new Map<string, Subscriber>()
  const pushes: ReceivedPush[] = []
  let script: PushReply[] | ((p: ReceivedPush) => PushReply) = [{ status: 201 }]
  let served = 0
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      const body = Buffer.concat(chunks)
      const sub = subscribers.get(req.url ?? '')
      let payload: string | undefined
      try {
        payload = sub && body.length > 0 ? decryptAes128gcm(body, sub) : undefined
      } catch {
        payload = undefined
      }
      const push: ReceivedPush = {
        at: Date.now(),
        path: req.url ?? '',
        headers: req.headers,
        vapid: await verifyVapid(req.headers.authorization).catch(() => undefined),
        payload,
      }
      pushes.push(push)
      const reply =
        typeof script === 'function'
          ? script(push)
          : (script[Math.min(served, script.length - 1)] ?? { status: 201 })
      served++
      res.writeHead(reply.status, reply.headers ?? {})
      res.end(reply.body ?? '')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    origin,
    pushes,
    subscribe(name) {
      const ecdh = createECDH('prime256v1')
      ecdh.generateKeys()
      const auth = randomBytes(16)
      subscribers.set(`/push/${name}`, { ecdh, auth })
      return {
        endpoint: `${origin}/push/${name}`,
        keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') },
      }
    },
    reply(next) {
      script = next
      served = 0
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
