import { Gauge, type Registry } from 'prom-client'
import type { PauseState } from './pause.ts'

/** `observers_paused{target}`: 1 for each observer or action paused in the database. */
export function registerPauseGauge(registry: Registry, pause: PauseState): void {
  const gauge: Gauge<'target'> = new Gauge({
    name: 'observers_paused',
    help: 'Observers (name) and actions (name#index) paused cluster-wide, as of the last read',
    labelNames: ['target'],
    registers: [registry],
    collect() {
      gauge.reset()
      for (const target of pause.paused()) gauge.set({ target }, 1)
    },
  })
}
