import { createPrivateKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { JWT } from 'google-auth-library'
import { ActionError, coerceError, ErrorCode } from '../errors/errors.ts'
import { lazyModule } from '../runtime/lazy.ts'
import { isTransientStatus } from './http.ts'

const googleAuth = lazyModule<typeof import('google-auth-library')>('google-auth-library')

const googleTokenUrl = 'https://oauth2.googleapis.com/token'
const messagingScope = 'https://www.googleapis.com/auth/firebase.messaging'

/** The fields of a Google service-account key file that sending needs. */
interface ServiceAccountKey {
  project_id: string
  client_email: string
  private_key: string
  token_uri?: string
}

export interface FcmCredentials {
  projectId: string
  client: JWT
}

/** One client per service account: google-auth-library caches its access token until expiry. */
const clients = new Map<string, FcmCredentials>()

function invalid(message: string, cause?: unknown): ActionError {
  return new ActionError(`FCM_SERVICE_ACCOUNT: ${message}`, {
    retryable: false,
    code: ErrorCode.InvalidActionConfig,
    ...(cause === undefined ? {} : { cause }),
  })
}

/** FCM_SERVICE_ACCOUNT holds the key file's JSON, or a path to it. */
function readKey(value: string): ServiceAccountKey {
  let text = value
  if (!value.trimStart().startsWith('{')) {
    try {
      text = readFileSync(value, 'utf8')
    } catch (err) {
      throw invalid(`cannot read the key file: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, err)
    }
  }
  let key: Partial<ServiceAccountKey>
  try {
    key = JSON.parse(text) as Partial<ServiceAccountKey>
  } catch (err) {
    throw invalid('not a service-account key (JSON does not parse)', err)
  }
  for (const field of ['project_id', 'client_email', 'private_key'] as const) {
    if (typeof key[field] !== 'string' || key[field] === '') throw invalid(`the key has no ${field}`)
  }
  try {
    createPrivateKey(key.private_key as string)
  } catch (err) {
    throw invalid('private_key is not a PEM private key', err)
  }
  return key as ServiceAccountKey
}

/**
 * google-auth-library always posts to Google's token endpoint; the key's token_uri is honoured
 * by redirecting that request (and signing the assertion for that audience). Retries are ours
 * to decide, so the library's own are turned off.
 */
function createClient(key: ServiceAccountKey): JWT {
  const tokenUri = key.token_uri ?? googleTokenUrl
  const client = new (googleAuth().JWT)({
    email: key.client_email,
    key: key.private_key,
    scopes: [messagingScope],
    additionalClaims: { aud: tokenUri },
  })
  client.transporter.interceptors.request.add({
    resolved: async (opts) => {
      if (opts.url.href !== googleTokenUrl) return opts
      opts.url = new URL(tokenUri)
      opts.retryConfig = { ...opts.retryConfig, retry: 0, noResponseRetries: 0 }
      return opts
    },
  })
  return client
}

export function fcmCredentials(value: string): FcmCredentials {
  let credentials = clients.get(value)
  if (!credentials) {
    const key = readKey(value)
    credentials = { projectId: key.project_id, client: createClient(key) }
    clients.set(value, credentials)
  }
  return credentials
}

/** A cached or fresh OAuth2 access token; a rejected key is permanent, an unreachable endpoint is not. */
export async function fcmAccessToken(credentials: FcmCredentials): Promise<string> {
  try {
    const { token } = await credentials.client.getAccessToken()
    if (!token) throw new Error('token endpoint answered without an access_token')
    return token
  } catch (err) {
    const status = err instanceof googleAuth().gaxios.GaxiosError ? err.status : undefined
    throw new ActionError(
      `FCM access token request failed${status ? ` (${status})` : ''}: ${coerceError(err).message}`,
      {
        retryable: status === undefined || isTransientStatus(status),
        ...(status === undefined ? {} : { status }),
        cause: err,
      },
    )
  }
}
