import { Gauge, type Registry } from 'prom-client'
import type { Breakers } from './breaker.ts'
import type { PauseState } from './pause.ts'

/**
 * `observers_paused{target}` and `observers_breaker_open{destination}`: 1 for each target paused
 * and each destination open in the database, as this worker last read them.
 */
export function registerControlGauges(registry: Registry, pause: PauseState, breakers: Breakers): void {
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
}
