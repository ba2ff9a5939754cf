/**
 * When a failed delivery is tried again. The default follows the Standard Webhooks
 * specification's suggestion: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after the failures in
 * turn; eight attempts over 27 h 35 min, so the first retry comes within 30 s and retries go on
 * for more than 24 h. Each delay is spread by up to a tenth, so that a backlog failing together
 * does not come back as one wave.
 */

export const DEFAULT_RETRY_DELAYS_MS = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];

/**
 * The time of the next attempt after `failedAttempts` failures, or undefined when the event is
 * given up on (it then counts in failedDeliveries until redeliverFailedEvents).
 */
export function nextAttemptAt(failedAttempts: number, now: Date, delaysMs: readonly number[] = DEFAULT_RETRY_DELAYS_MS, random: () => number = Math.random): Date | undefined {
  const delay = delaysMs[failedAttempts - 1];
  if (delay === undefined) return undefined;
  const jitter = delay * 0.1 * random();
  return new Date(now.getTime() + delay + jitter);
}

/** How long retries go on after the first attempt, at the longest (with full jitter). */
export function retryPeriodMs(delaysMs: readonly number[] = DEFAULT_RETRY_DELAYS_MS): { shortest: number; longest: number } {
  const total = delaysMs.reduce((sum, d) => sum + d, 0);
  return { shortest: total, longest: total * 1.1 };
}
