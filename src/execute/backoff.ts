import type { RetryPolicy } from '../observers/types.ts'

/**
 * Delay before the attempt after `failedAttempt` (1-based): exponential initial*2^(n-1),
 * linear initial*n, fixed initial; capped by max_delay_ms. A Retry-After hint from the
 * server wins when it asks for longer, still within the cap.
 */
export function retryDelayMs(policy: RetryPolicy, failedAttempt: number, retryAfterMs?: number): number {
  const n = Math.max(1, failedAttempt)
  const base =
    policy.backoff_strategy === 'exponential'
      ? policy.initial_delay_ms * 2 ** (n - 1)
      : policy.backoff_strategy === 'linear'
        ? policy.initial_delay_ms * n
        : policy.initial_delay_ms
  return Math.min(policy.max_delay_ms, Math.max(base, retryAfterMs ?? 0))
}
