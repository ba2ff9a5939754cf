import { describe, expect, test } from 'vitest';
import { backoffMs, createClaimer, decide, DEFAULT_POLICY, parseRetryAfter, type Attempt } from './claim-policy';

const unavailable = (retryAfterMs?: number): Attempt => ({ kind: 'error', code: 'SERVICE_UNAVAILABLE', retryAfterMs });
const rateLimited = (retryAfterMs?: number): Attempt => ({ kind: 'error', code: 'RATE_LIMITED', retryAfterMs });

describe('what a claim answer means', () => {
  test('ISSUED and ALREADY_ISSUED are both a win; SOLD_OUT and ENDED are final answers', () => {
    expect(decide({ kind: 'outcome', status: 'ISSUED' }, 1)).toEqual({ kind: 'won', status: 'ISSUED' });
    expect(decide({ kind: 'outcome', status: 'ALREADY_ISSUED' }, 3)).toEqual({ kind: 'won', status: 'ALREADY_ISSUED' });
    expect(decide({ kind: 'outcome', status: 'SOLD_OUT' }, 1)).toEqual({ kind: 'final', status: 'SOLD_OUT' });
    expect(decide({ kind: 'outcome', status: 'ENDED' }, 1)).toEqual({ kind: 'final', status: 'ENDED' });
  });

  test('SERVICE_UNAVAILABLE waits at least retry-after, spread over as long again by the jitter', () => {
    expect(decide(unavailable(1000), 1, () => 0)).toEqual({ kind: 'retry', delayMs: 1000, why: 'SERVICE_UNAVAILABLE' });
    expect(decide(unavailable(1000), 1, () => 0.999).kind === 'retry' && (decide(unavailable(1000), 1, () => 0.999) as { delayMs: number }).delayMs).toBe(1999);
    // A thousand clients turned away together come back spread over the whole second, not at once.
    const delays = Array.from({ length: 1000 }, (_, i) => (decide(unavailable(1000), 1, () => i / 1000) as { delayMs: number }).delayMs);
    expect(Math.min(...delays)).toBe(1000);
    expect(Math.max(...delays)).toBeGreaterThan(1990);
    expect(new Set(delays.map((d) => Math.floor(d / 100))).size).toBe(10);
  });

  test('SERVICE_UNAVAILABLE with retry-after 0 comes back within the backoff, spread', () => {
    expect(decide(unavailable(0), 1, () => 0)).toEqual({ kind: 'retry', delayMs: 0, why: 'SERVICE_UNAVAILABLE' });
    expect(decide(unavailable(0), 1, () => 0.5)).toEqual({ kind: 'retry', delayMs: 250, why: 'SERVICE_UNAVAILABLE' });
    expect(decide(unavailable(0), 2, () => 0.999)).toMatchObject({ delayMs: 999 });
  });

  test('SERVICE_UNAVAILABLE without retry-after, and no answer at all, back off exponentially with jitter', () => {
    expect(decide(unavailable(), 1, () => 0)).toMatchObject({ delayMs: 500 });
    expect(decide(unavailable(), 3, () => 0)).toMatchObject({ delayMs: 2000 });
    expect(decide({ kind: 'error' }, 2, () => 0.5)).toEqual({ kind: 'retry', delayMs: 1500, why: 'NETWORK' });
  });

  test('RATE_LIMITED backs off exponentially and never sooner than the server asks', () => {
    const first = decide(rateLimited(100), 1, () => 0) as { delayMs: number };
    const third = decide(rateLimited(100), 3, () => 0) as { delayMs: number };
    expect(first.delayMs).toBe(500);
    expect(third.delayMs).toBe(2000);
    expect(decide(rateLimited(3000), 1, () => 0)).toMatchObject({ delayMs: 3000 });
    expect(backoffMs(20)).toBe(DEFAULT_POLICY.maxDelayMs);
  });

  test('errors a retry does not cure stop at once, and retries stop after the last attempt', () => {
    for (const code of ['UNAUTHENTICATED', 'NOT_FOUND', 'BAD_USER_INPUT', 'FORBIDDEN', 'INTERNAL_SERVER_ERROR']) {
      expect(decide({ kind: 'error', code }, 1)).toEqual({ kind: 'stop', code });
    }
    expect(decide(unavailable(1000), DEFAULT_POLICY.maxAttempts)).toEqual({ kind: 'stop', code: 'SERVICE_UNAVAILABLE' });
    expect(decide({ kind: 'outcome', status: 'NOT_STARTED' }, 1, () => 0)).toEqual({ kind: 'retry', delayMs: 250, why: 'NOT_STARTED' });
    expect(decide({ kind: 'outcome', status: 'NOT_STARTED' }, DEFAULT_POLICY.notStartedRetries + 1)).toEqual({ kind: 'stop', code: 'NOT_STARTED' });
  });

  test('retry-after is read as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('1')).toBe(1000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 7_000)).toBe(3000);
  });
});

describe('one press of the claim button', () => {
  test('never has two claims in flight: a second press joins the first', async () => {
    let inFlight = 0;
    let most = 0;
    let sent = 0;
    const claimer = createClaimer({
      send: async () => {
        sent++;
        most = Math.max(most, ++inFlight);
        await new Promise((resolve) => setTimeout(resolve, 10));
        inFlight--;
        return { attempt: { kind: 'outcome', status: 'ISSUED' } };
      },
    });
    const presses = await Promise.all([claimer.claim(), claimer.claim(), claimer.claim()]);
    expect(sent).toBe(1);
    expect(most).toBe(1);
    expect(new Set(presses).size).toBe(1);
    expect(claimer.busy).toBe(false);
  });

  test('retries through SERVICE_UNAVAILABLE after the delays the policy gives, and a late ALREADY_ISSUED is a win', async () => {
    const answers: Attempt[] = [unavailable(1000), { kind: 'error' }, { kind: 'outcome', status: 'ALREADY_ISSUED' }];
    const slept: number[] = [];
    const claimer = createClaimer({
      send: async () => ({ attempt: answers.shift()!, value: 'issuance-1' }),
      sleep: async (ms) => void slept.push(ms),
      random: () => 0,
    });
    const end = await claimer.claim();
    expect(end).toEqual({ decision: { kind: 'won', status: 'ALREADY_ISSUED' }, value: 'issuance-1', attempts: 3 });
    expect(slept).toEqual([1000, 1000]);
  });

  test('gives up after the last attempt and says why', async () => {
    const claimer = createClaimer({ send: async () => ({ attempt: unavailable(1) }), sleep: async () => {}, random: () => 0 });
    const end = await claimer.claim();
    expect(end.decision).toEqual({ kind: 'stop', code: 'SERVICE_UNAVAILABLE' });
    expect(end.attempts).toBe(DEFAULT_POLICY.maxAttempts);
  });
});
