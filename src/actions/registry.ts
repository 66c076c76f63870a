import { log } from './log.ts'
import type { ActionType } from './types.ts'
import { webhook } from './webhook.ts'

/** Every action type this build can execute, by `type`. */
export const actionTypes: ReadonlyMap<string, ActionType> = new Map(
  ([webhook, log] as ActionType[]).map((a) => [a.type, a]),
)
