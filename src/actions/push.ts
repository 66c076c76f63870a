import type { Config } from '../config/config.ts'
import { renderJson, renderString } from '../templates/render.ts'
import { missingEnv } from './env.ts'
import { sendFcm } from './push-fcm.ts'
import type { PushAction, PushContent } from './push-types.ts'
import { sendWebPush, vapidVariables } from './push-webpush.ts'
import type { ActionType } from './types.ts'

/** An explicit provider wins; otherwise FCM when its service account is set, then Web Push. */
export function pushProvider(action: PushAction, config: Config): 'fcm' | 'webpush' {
  if (action.provider) return action.provider
  if (config.env.FCM_SERVICE_ACCOUNT) return 'fcm'
  return config.env.VAPID_PRIVATE_KEY ? 'webpush' : 'fcm'
}

function renderContent(action: PushAction, scope: object): PushContent {
  const data = action.data === undefined ? undefined : renderJson(action.data, scope)
  return {
    ...(action.title_template === undefined ? {} : { title: renderString(action.title_template, scope) }),
    ...(action.body_template === undefined ? {} : { body: renderString(action.body_template, scope) }),
    ...(data && typeof data === 'object' ? { data: data as Record<string, unknown> } : {}),
  }
}

export const push: ActionType<PushAction> = {
  type: 'push',
  defaultTimeoutMs: 10_000,
  missingTransport: (action, config) =>
    missingEnv(
      config,
      pushProvider(action, config) === 'fcm' ? ['FCM_SERVICE_ACCOUNT'] : [...vapidVariables],
    ),
  templates: (action) => [action.device_token, action.title_template, action.body_template, action.data],
  destination: (action) => action.provider ?? 'default',
  async execute(action, ctx) {
    const content = renderContent(action, ctx.scope)
    return pushProvider(action, ctx.config) === 'fcm'
      ? sendFcm(action, ctx, content)
      : sendWebPush(action, ctx, content)
  },
}
