import { generateKeyPairSync, randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { importSPKI, jwtVerify } from 'jose'

export const fcmScope = 'https://www.googleapis.com/auth/firebase.messaging'

export interface TokenExchange {
  grantType: string | null
  claims: Record<string, unknown>
}

export interface FcmSend {
  at: number
  path: string
  authorization: string | undefined
  /** Whether the bearer token is one this server issued. */
  authorized: boolean
  /** The x-observers-delivery-id header. */
  deliveryId: string | undefined
  body: { message?: Record<string, unknown> }
}

export type FcmReply = { status: number; headers?: Record<string, string>; body?: unknown }

export interface FakeFcm {
  /** FCM_API_BASE for the worker. */
  apiBase: string
  /** A service-account key file (JSON text) whose token_uri is this server. */
  serviceAccount: string
  projectId: string
  clientEmail: string
  tokens: TokenExchange[]
  sends: FcmSend[]
  reply(script: FcmReply[] | ((send: FcmSend) => FcmReply)): void
  close(): Promise<void>
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
  })
}

function send(res: http.ServerResponse, reply: FcmReply) {
  res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers })
  res.end(reply.body === undefined ? '' : JSON.stringify(reply.body))
}

/** The canonical FCM v1 error body. */
export function fcmError(status: number, state: string, errorCode?: string): FcmReply {
  const details = errorCode
    ? [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }]
    : []
  return {
    status,
    body: { error: { code: status, message: `${state} from the fake`, status: state, details } },
  }
}

/**
 * A local OAuth2 token endpoint and FCM HTTP v1 API. The token endpoint verifies the signed JWT
 * assertion with the service account's public key (RS256) and issues opaque access tokens.
 */
export async function startFakeFcm(projectId = 'demo-project'): Promise<FakeFcm> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  })
  const verifyKey = await importSPKI(publicKey, 'RS256')
  const issued = new Set<string>()
  const tokens: TokenExchange[] = []
  const sends: FcmSend[] = []
  let script: FcmReply[] | ((s: FcmSend) => FcmReply) = [{ status: 200 }]
  let served = 0
  let tokenUri = ''
  const server = http.createServer(async (req, res) => {
    const text = await readBody(req)
    if (req.url === '/token') {
      const form = new URLSearchParams(text)
      try {
        const { payload } = await jwtVerify(form.get('assertion') ?? '', verifyKey, {
          audience: tokenUri,
        })
        tokens.push({ grantType: form.get('grant_type'), claims: payload })
        const accessToken = `ya29.${randomBytes(12).toString('hex')}`
        issued.add(accessToken)
        return send(res, {
          status: 200,
          body: { access_token: accessToken, expires_in: 3599, token_type: 'Bearer' },
        })
      } catch (err) {
        return send(res, { status: 400, body: { error: 'invalid_grant', error_description: String(err) } })
      }
    }
    const authorization = req.headers.authorization
    const s: FcmSend = {
      at: Date.now(),
      path: req.url ?? '',
      authorization,
      authorized: issued.has(authorization?.replace(/^Bearer /, '') ?? ''),
      deliveryId: req.headers['x-observers-delivery-id'] as string | undefined,
      body: JSON.parse(text || '{}'),
    }
    sends.push(s)
    if (!s.authorized) return send(res, fcmError(401, 'UNAUTHENTICATED'))
    const reply =
      typeof script === 'function'
        ? script(s)
        : (script[Math.min(served, script.length - 1)] ?? { status: 200 })
    served++
    send(res, reply.status === 200 && reply.body === undefined ? okReply(projectId) : reply)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  tokenUri = `${base}/token`
  const clientEmail = `observers@${projectId}.iam.gserviceaccount.com`
  return {
    apiBase: base,
    serviceAccount: JSON.stringify({
      type: 'service_account',
      project_id: projectId,
      private_key_id: 'key-1',
      private_key: privateKey,
      client_email: clientEmail,
      token_uri: tokenUri,
    }),
    projectId,
    clientEmail,
    tokens,
    sends,
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

function okReply(projectId: string): FcmReply {
  return { status: 200, body: { name: `projects/${projectId}/messages/0:${randomBytes(6).toString('hex')}` } }
}
