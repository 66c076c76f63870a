import { actionTypes } from '../actions/registry.ts'
import type { ActionDefaults } from './match.ts'

/** Each action type's own time limit and destination key, for observers that set neither. */
export const actionDefaults: ActionDefaults = {
  timeoutMs: (type) => actionTypes.get(type)?.defaultTimeoutMs ?? 10_000,
  destination: (action) => actionTypes.get(action.type)?.destination?.(action) ?? 'default',
}
