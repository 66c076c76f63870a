import { cache } from './cache.ts'
import { email } from './email.ts'
import { log } from './log.ts'
import { nats } from './nats.ts'
import { push } from './push.ts'
import { search } from './search.ts'
import { slack } from './slack.ts'
import { sms } from './sms.ts'
import type { ActionType } from './types.ts'
import { webhook } from './webhook.ts'

/** Every action type this build can execute, by `type`. */
export const actionTypes: ReadonlyMap<string, ActionType> = new Map(
  ([webhook, slack, email, sms, push, search, cache, nats, log] as ActionType[]).map((a) => [a.type, a]),
)
