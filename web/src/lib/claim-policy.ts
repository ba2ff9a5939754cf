/**
 * Retry etiquette for claims, as pure functions and a small runner with its clock and network
 * injected (unit-tested in claim-policy.test.ts). What every client of a drop should do:
 *
 * - Never more than one claim in flight per user: a second press while one is out joins it.
 * - ISSUED and ALREADY_ISSUED are both a win (ALREADY_ISSUED returns the same issuance: an
 *   earlier claim, perhaps one whose answer was lost, already won). Never retry after a win.
 * - SOLD_OUT and ENDED are final answers, not failures: stop.
 * - SERVICE_UNAVAILABLE (or no answer at all): the claim may have won anyway; retrying is safe
 *   because a win answers ALREADY_ISSUED. Wait at least the server's `retry-after`, plus a random
 *   share of as long again, so the clients the server turned away together do not come back together.
 * - RATE_LIMITED: back off exponentially, never sooner than the server's `retryAfterMs`, with jitter.
 * - NOT_STARTED: this page's estimate of the server's clock was a little early; a few retries
 *   spread over half a second.
 * - Anything else (UNAUTHENTICATED, NOT_FOUND, BAD_USER_INPUT...) is not cured by retrying.
 */

export type ClaimStatus = 'ISSUED' | 'ALREADY_ISSUED' | 'SOLD_OUT' | 'NOT_STARTED' | 'ENDED';

/** One claim request's result as the policy needs it. `code` undefined: no answer (network). */
export type Attempt = { kind: 'outcome'; status: ClaimStatus } | { kind: 'error'; code?: string; retryAfterMs?: number };

export type Decision =
  | { kind: 'won'; status: 'ISSUED' | 'ALREADY_ISSUED' }
  | { kind: 'final'; status: 'SOLD_OUT' | 'ENDED' }
  | { kind: 'retry'; delayMs: number; why: 'SERVICE_UNAVAILABLE' | 'RATE_LIMITED' | 'NOT_STARTED' | 'NETWORK' }
  | { kind: 'stop'; code: string };

export interface RetryPolicy {
  /** Attempts in all for one press of the button, the first included. */
  maxAttempts: number;
  /** Backoff of the first retry without a hint from the server; doubles each time. */
  baseDelayMs: number;
  /** Cap of the doubling backoff (the jitter comes on top). */
  maxDelayMs: number;
  /** Retries after NOT_STARTED. */
  notStartedRetries: number;
}

export const DEFAULT_POLICY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 500, maxDelayMs: 8000, notStartedRetries: 3 };

/** Exponential backoff before attempt `attempt + 1`. */
export const backoffMs = (attempt: number, policy: RetryPolicy = DEFAULT_POLICY) => Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));

/**
 * What to do after attempt number `attempt` (1 for the first) came back as `result`.
 * `random` returns [0, 1): the jitter.
 */
export function decide(result: Attempt, attempt: number, random: () => number = Math.random, policy: RetryPolicy = DEFAULT_POLICY): Decision {
  if (result.kind === 'outcome') {
    switch (result.status) {
      case 'ISSUED':
      case 'ALREADY_ISSUED':
        return { kind: 'won', status: result.status };
      case 'SOLD_OUT':
      case 'ENDED':
        return { kind: 'final', status: result.status };
      case 'NOT_STARTED':
        if (attempt > policy.notStartedRetries) return { kind: 'stop', code: 'NOT_STARTED' };
        return { kind: 'retry', delayMs: Math.round(250 + random() * 500), why: 'NOT_STARTED' };
    }
  }
  const code = result.code ?? 'NETWORK';
  if (code !== 'SERVICE_UNAVAILABLE' && code !== 'RATE_LIMITED' && code !== 'NETWORK') return { kind: 'stop', code };
  if (attempt >= policy.maxAttempts) return { kind: 'stop', code };
  const backoff = backoffMs(attempt, policy);
  // The server's hint is a floor, never shortened; the jitter spreads the returns over as long again.
  const floor = code === 'RATE_LIMITED' ? Math.max(result.retryAfterMs ?? 0, backoff) : (result.retryAfterMs ?? backoff);
  const spread = Math.max(floor, code === 'RATE_LIMITED' ? 0 : backoff);
  return { kind: 'retry', delayMs: Math.round(floor + random() * spread), why: code };
}

/** Seconds (or an HTTP date) of a `retry-after` header, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export interface ClaimEnd<V> {
  decision: Exclude<Decision, { kind: 'retry' }>;
  /** The last answer's payload (the issuance of a win). */
  value?: V;
  attempts: number;
}

export interface ClaimerDeps<V> {
  /** Sends one claim. Must not throw: failures are `{ kind: 'error' }`. */
  send: () => Promise<{ attempt: Attempt; value?: V }>;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  policy?: RetryPolicy;
  /** A retry is scheduled after `delayMs` (for "retrying in 2 s"). */
  onRetry?: (decision: Extract<Decision, { kind: 'retry' }>, attempt: number) => void;
}

/**
 * One press of the claim button: attempts until a decision that is not a retry. At most one runs
 * at a time: pressing again while it runs returns the same promise, so no second claim goes out.
 */
export function createClaimer<V>(deps: ClaimerDeps<V>): { claim(): Promise<ClaimEnd<V>>; readonly busy: boolean } {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let running: Promise<ClaimEnd<V>> | undefined;
  const run = async (): Promise<ClaimEnd<V>> => {
    for (let attempt = 1; ; attempt++) {
      const { attempt: result, value } = await deps.send();
      const decision = decide(result, attempt, deps.random, deps.policy);
      if (decision.kind !== 'retry') return { decision, value, attempts: attempt };
      deps.onRetry?.(decision, attempt);
      await sleep(decision.delayMs);
    }
  };
  return {
    claim() {
      running ??= run().finally(() => (running = undefined));
      return running;
    },
    get busy() {
      return running !== undefined;
    },
  };
}
