import { Counter, Gauge, type Registry } from 'prom-client'
import type { Breakers } from './breaker.ts'
import type { PauseState } from './pause.ts'
import type { RateLimits, WaitReason } from './rate-limit.ts'

/**
 * `observers_paused{target}`, `observers_breaker_open{destination}` and
 * `observers_destination_blocked{key}`: 1 for each target paused, each destination open and
 * each rate key blocked by a 429 in the database, as this worker last read them.
 */
export function registerControlGauges(
  registry: Registry,
  pause: PauseState,
  breakers: Breakers,
  limits: RateLimits,
): void {
  const paused: Gauge<'target'> = new Gauge({
    name: 'observers_paused',
    help: 'Observers (name) and actions (name#index) paused cluster-wide, as of the last read',
    labelNames: ['target'],
    registers: [registry],
    collect() {
      paused.reset()
      for (const target of pause.paused()) paused.set({ target }, 1)
    },
  })
  const open: Gauge<'destination'> = new Gauge({
    name: 'observers_breaker_open',
    help: 'Destinations whose circuit breaker is open cluster-wide, as of the last read',
    labelNames: ['destination'],
    registers: [registry],
    collect() {
      open.reset()
      for (const b of breakers.open()) open.set({ destination: b.destination }, 1)
    },
  })
  const blocked: Gauge<'key'> = new Gauge({
    name: 'observers_destination_blocked',
    help: 'Rate keys whose destination answered 429 with Retry-After, held cluster-wide until then',
    labelNames: ['key'],
    registers: [registry],
    collect() {
      blocked.reset()
      for (const b of limits.blocked()) blocked.set({ key: b.key }, 1)
    },
  })
}

/** `observers_rate_limit_waits_total{observer,reason}`: deliveries this worker put back to wait for their rate. */
export function countRateLimitWaits(registry: Registry): (observer: string, reason: WaitReason) => void {
  const waits = new Counter({
    name: 'observers_rate_limit_waits_total',
    help: 'Deliveries put back to wait, attempt not spent: over their rate_limit (rate) or held by a 429 Retry-After (blocked)',
    labelNames: ['observer', 'reason'],
    registers: [registry],
  })
  return (observer, reason) => waits.inc({ observer, reason })
}
