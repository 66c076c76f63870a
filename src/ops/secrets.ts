import type { Config } from '../config/config.ts'
import { urlPassword } from '../log/log.ts'
import type { Observer } from '../observers/types.ts'

/** Transport variables whose whole value is a secret. */
const secretVariables = [
  'OBSERVERS_API_TOKEN',
  'TWILIO_AUTH_TOKEN',
  'SEARCH_API_KEY',
  'SEARCH_PASSWORD',
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

function basic(user: string, password: string): string {
  return Buffer.from(`${user}:${password}`).toString('base64')
}

/** `user:password` of a URL, decoded, as an HTTP client would send it in Basic auth. */
function urlCredentials(url: string | undefined): string | undefined {
  if (!url || !URL.canParse(url)) return undefined
  const u = new URL(url)
  if (!u.username && !u.password) return undefined
  return basic(decodeURIComponent(u.username), decodeURIComponent(u.password))
}

/**
 * The forms a secret takes on the wire, where a receiver may echo it back: Basic credentials
 * built from the product's own settings (URL credentials, SEARCH_USERNAME/SEARCH_PASSWORD,
 * Twilio's `sid:token`).
 */
function derivedForms(config: Config, values: readonly string[]): string[] {
  const env = config.env
  const forms = values.map(urlCredentials)
  if (env.SEARCH_USERNAME) forms.push(basic(env.SEARCH_USERNAME, env.SEARCH_PASSWORD ?? ''))
  if (env.TWILIO_ACCOUNT_SID && env.TWILIO_AUTH_TOKEN)
    forms.push(basic(env.TWILIO_ACCOUNT_SID, env.TWILIO_AUTH_TOKEN))
  return forms.filter((v): v is string => !!v)
}

/** A secret as it appears inside a URL or a form body, when that spelling differs. */
function percentEncoded(value: string): string[] {
  const component = encodeURIComponent(value)
  const form = new URLSearchParams({ v: value }).toString().slice(2)
  return [component, form].filter((v) => v !== value)
}

/**
 * Every value the logs must never show: variables observers reference (signing secrets, header
 * values, URLs that may embed tokens), transport secrets and connection-string passwords, each
 * also in the forms it takes on the wire (percent-encoded, Basic credentials).
 */
export function secretValues(config: Config, observers: readonly Observer[]): string[] {
  const names = new Set(secretVariables)
  for (const o of observers) for (const a of o.actions) for (const n of referencedEnvNames(a)) names.add(n)
  const present = (v: string | undefined): v is string => !!v
  const values = [...names].map((n) => config.env[n]).filter(present)
  const urls = [...values, ...urlVariables.map((n) => config.env[n]), config.databaseUrl].filter(present)
  const raw = [...values, ...urls.map(urlPassword).filter(present)]
  return [...raw, ...raw.flatMap(percentEncoded), ...derivedForms(config, urls)]
}
