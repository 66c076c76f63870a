import type { Config } from '../config/config.ts'
import { ErrorCode } from '../errors/errors.ts'
import type { Logger } from '../log/log.ts'
import type { Observer } from '../observers/types.ts'
import { actionTypes } from './registry.ts'

/**
 * Warns (OB005) about every action whose transport setting is unset: its deliveries will fail.
 * Not a load problem, so a worker still starts while one integration is being configured.
 */
export function warnMissingTransports(observers: readonly Observer[], config: Config, log: Logger): void {
  for (const o of observers) {
    o.actions.forEach((action, i) => {
      const missing = actionTypes.get(action.type)?.missingTransport(action, config) ?? []
      for (const variable of missing) {
        log.warn(
          { code: ErrorCode.InvalidActionConfig, observer: o.name, action: i, variable },
          `${ErrorCode.InvalidActionConfig}: observer "${o.name}" action ${i} (${action.type}) needs ${variable}, which is not set; its deliveries will fail (set it and restart the worker: a reload does not re-read the environment)`,
        )
      }
    })
  }
}
