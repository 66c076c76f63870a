/**
 * An observer `name` of INSERTs into `entity` whose one action is `webhook` (its url and other
 * fields), retried as `retry` says at a fixed delay.
 */
export function webhookObserver(
  name: string,
  entity: string,
  webhook: { url: string } & Record<string, unknown>,
  retry: { max_attempts: number; initial_delay_ms: number },
) {
  return {
    name,
    entity,
    events: ['INSERT'],
    retry: { ...retry, backoff_strategy: 'fixed' },
    actions: [{ type: 'webhook', ...webhook }],
  }
}
