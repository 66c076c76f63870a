/** The devices table and push observers shared by the push tests. */
export const devicesTableSql = `create table devices (id int primary key, kind text not null, name text,
  token text, subscription jsonb, sub_text text, meta jsonb)`

export const fcmAction = { provider: 'fcm', device_token: '{{ token }}' }
export const webAction = { provider: 'webpush', device_token: '{{ subscription }}' }

/** An observer `push-<kind>` for rows of that kind, with title, body and typed data templates. */
export function pushObserver(kind: string, action: Record<string, unknown>) {
  return {
    name: `push-${kind}`,
    entity: 'devices',
    events: ['INSERT'],
    condition: `kind = '${kind}'`,
    actions: [
      {
        type: 'push',
        title_template: 'Order {{ entity_id }}',
        body_template: '{{ name }}, it shipped',
        data: { order_id: '{{ after.id }}', who: '{{ name }}', meta: '{{ meta }}' },
        ...action,
      },
    ],
    retry: { max_attempts: 3, initial_delay_ms: 200, max_delay_ms: 5000, backoff_strategy: 'exponential' },
  }
}
