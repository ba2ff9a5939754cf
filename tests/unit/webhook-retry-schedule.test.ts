import { DEFAULT_RETRY_DELAYS_MS, nextAttemptAt, retryPeriodMs } from '../../src/events/retry-schedule';

const now = new Date('2026-01-01T00:00:00Z');
const after = (failures: number, random = 0) => {
  const at = nextAttemptAt(failures, now, DEFAULT_RETRY_DELAYS_MS, () => random);
  return at && at.getTime() - now.getTime();
};

describe('the webhook retry schedule', () => {
  it('retries a first failure within 30 s', () => {
    expect(after(1, 0)).toBe(5_000);
    expect(after(1, 0.999)!).toBeLessThan(30_000);
  });

  it('waits longer after each failure', () => {
    const delays = DEFAULT_RETRY_DELAYS_MS.map((_, i) => after(i + 1)!);
    for (let i = 1; i < delays.length; i += 1) expect(delays[i]).toBeGreaterThanOrEqual(delays[i - 1]!);
  });

  it('goes on for at least 24 hours, then gives up', () => {
    expect(retryPeriodMs().shortest).toBeGreaterThanOrEqual(24 * 3_600_000);
    expect(after(DEFAULT_RETRY_DELAYS_MS.length)).toBeDefined();
    expect(after(DEFAULT_RETRY_DELAYS_MS.length + 1)).toBeUndefined();
  });

  it('spreads a delay by at most a tenth, so failures together do not come back together', () => {
    expect(after(2, 0)).toBe(300_000);
    expect(after(2, 0.5)).toBe(315_000);
    expect(after(2, 0.999)!).toBeLessThan(330_000);
  });

  it('follows a configured list (tests and benches)', () => {
    expect(nextAttemptAt(1, now, [100, 200], () => 0)!.getTime() - now.getTime()).toBe(100);
    expect(nextAttemptAt(3, now, [100, 200])).toBeUndefined();
  });
});
