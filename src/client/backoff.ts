// Exponential backoff with jitter. Randomness is injected so that tests get the same delays every run.

export interface BackoffOptions {
  /** Delay before the first retry, before jitter. */
  initialMs?: number;
  /** Cap on the delay, before jitter. */
  maxMs?: number;
  /** Growth per retry. */
  multiplier?: number;
}

export const defaultBackoff: Required<BackoffOptions> = { initialMs: 25, maxMs: 1000, multiplier: 2 };

/**
 * The delay before retry number `retry` (1 for the first retry). "Equal jitter": half the exponential
 * step is fixed and half is random, so retries of many clients spread out but never collapse to zero.
 */
export function backoffDelay(retry: number, random: () => number, opts: BackoffOptions = {}): number {
  const { initialMs, maxMs, multiplier } = { ...defaultBackoff, ...opts };
  const step = Math.min(maxMs, initialMs * multiplier ** Math.max(0, retry - 1));
  const r = Math.min(1, Math.max(0, random()));
  return Math.round(step / 2 + (step / 2) * r);
}
