import type { Config } from '../config.ts'
import { urlPassword } from '../log.ts'
import type { Observer } from '../observers/types.ts'

/** Transport variables whose whole value is a secret. */
const secretVariables = [
  'OBSERVERS_API_TOKEN',
  'TWILIO_AUTH_TOKEN',
  'SEARCH_API_KEY',
  'VAPID_PRIVATE_KEY',
  'FCM_SERVICE_ACCOUNT',
]
/** Connection URLs whose password is a secret. */
const urlVariables = [
  'DATABASE_URL',
  'DATABASE_DIRECT_URL',
  'SMTP_URL',
  'REDIS_URL',
  'NATS_URL',
  'SEARCH_URL',
]

/** Names of the variables an action references through `*_env` options, at any depth. */
export function referencedEnvNames(value: unknown, key = ''): string[] {
  if (key.endsWith('_env')) {
    if (typeof value === 'string') return [value]
    if (value && typeof value === 'object') return Object.values(value).filter((v) => typeof v === 'string')
    return []
  }
  if (Array.isArray(value)) return value.flatMap((v) => referencedEnvNames(v))
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => referencedEnvNames(v, k))
  }
  return []
}

/**
 * Every value the logs must never show: variables observers reference (signing secrets, header
 * values, URLs that may embed tokens), transport secrets and connection-string passwords.
 */
export function secretValues(config: Config, observers: readonly Observer[]): string[] {
  const names = new Set(secretVariables)
  for (const o of observers) for (const a of o.actions) for (const n of referencedEnvNames(a)) names.add(n)
  const values = [...names].map((n) => config.env[n])
  const passwords = urlVariables.map((n) => urlPassword(config.env[n]))
  return [...values, ...passwords, urlPassword(config.databaseUrl)].filter((v): v is string => !!v)
}
