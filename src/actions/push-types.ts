import type { ActionConfig } from '../observers/types.ts'

export interface PushAction extends ActionConfig {
  type: 'push'
  provider?: 'fcm' | 'webpush'
  device_token: string
  title_template?: string
  body_template?: string
  data?: Record<string, unknown>
}

/** What a notification says, rendered once and shaped by each provider. */
export interface PushContent {
  title?: string
  body?: string
  data?: Record<string, unknown>
}
