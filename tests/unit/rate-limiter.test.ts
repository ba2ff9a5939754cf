import { GraphQLError } from 'graphql';
import { Redis } from 'ioredis';
import { addressKey, ClaimRateLimiter, WINDOW_BUCKETS, windowKey, type ClaimRateLimiterOptions } from '../../src/access/rate-limiter';

/** A Redis client that never connects: the limiter must count in memory at once. */
const disconnected = () => new Redis({ port: 1, lazyConnect: true, enableOfflineQueue: false });

const limiter = (redis: Redis, options: Partial<ClaimRateLimiterOptions>) =>
  new ClaimRateLimiter(redis, { perUser: 0, perIp: 0, ...options });

async function outcomes(rateLimiter: ClaimRateLimiter, claims: Array<{ userId: string; clientIp: string }>) {
  const results = await Promise.allSettled(claims.map((claimant) => rateLimiter.consume(claimant)));
  return results.map((result) => (result.status === 'fulfilled' ? 'ok' : (result.reason as GraphQLError).extensions.code));
}

const times = <T>(n: number, make: (i: number) => T) => Array.from({ length: n }, (_, i) => make(i));

describe('client address keys', () => {
  test('an IPv4 address is its own key, also when written IPv4-mapped', () => {
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
  });

  test('IPv6 addresses of one /56 share a key and another /56 gets another', () => {
    expect(addressKey('2001:db8:1:2a00::1')).toBe(addressKey('2001:db8:1:2aff:ffff::9'));
    expect(addressKey('2001:db8:1:2a00::1')).not.toBe(addressKey('2001:db8:1:2b00::1'));
  });

  test('something that is not an address is kept as it is', () => {
    expect(addressKey('unknown')).toBe('unknown');
  });
});

describe('claim rate limiter without a working Redis', () => {
  test('with Redis disconnected the per-user limit still holds, counted in memory, and says so', async () => {
    let fallbacks = 0;
    const rateLimiter = limiter(disconnected(), { perUser: 3, onFallback: () => (fallbacks += 1) });
    const started = performance.now();
    const results = await outcomes(rateLimiter, times(5, () => ({ userId: 'bot', clientIp: '198.51.100.1' })));
    expect(results.filter((r) => r === 'ok')).toHaveLength(3);
    expect(results.filter((r) => r === 'RATE_LIMITED')).toHaveLength(2);
    expect(fallbacks).toBe(5);
    expect(performance.now() - started).toBeLessThan(50);
  });

  test('when Redis counts time out the limit still holds, counted in memory', async () => {
    // What ioredis does with a commandTimeout when Redis stalls (see the integration tests for a real pause).
    const timingOut = {
      status: 'ready',
      pexpire: async () => 1,
      hincrby: () => new Promise((_, reject) => setTimeout(() => reject(new Error('Command timed out')), 20)),
    } as unknown as Redis;
    let fallbacks = 0;
    const rateLimiter = limiter(timingOut, { perUser: 2, onFallback: () => (fallbacks += 1) });
    const results = await outcomes(rateLimiter, times(4, () => ({ userId: 'bot', clientIp: '198.51.100.1' })));
    expect(results.sort()).toEqual(['RATE_LIMITED', 'RATE_LIMITED', 'ok', 'ok']);
    expect(fallbacks).toBe(4);
  });
});

describe('claim rate limiter rules', () => {
  test('RATE_LIMITED tells the client how long to wait, within the one-second window', async () => {
    const rateLimiter = limiter(disconnected(), { perUser: 1 });
    await rateLimiter.consume({ userId: 'eager', clientIp: '198.51.100.1' });
    const refused = await rateLimiter.consume({ userId: 'eager', clientIp: '198.51.100.1' }).catch((error: GraphQLError) => error);
    expect(refused).toBeInstanceOf(GraphQLError);
    expect((refused as GraphQLError).extensions).toMatchObject({ code: 'RATE_LIMITED' });
    expect((refused as GraphQLError).extensions.retryAfterMs).toBeGreaterThan(0);
    expect((refused as GraphQLError).extensions.retryAfterMs).toBeLessThanOrEqual(1000);
  });

  test('one user at the limit does not slow another user on the same address', async () => {
    const rateLimiter = limiter(disconnected(), { perUser: 2, perIp: 100 });
    await outcomes(rateLimiter, times(5, () => ({ userId: 'bot', clientIp: '198.51.100.1' })));
    expect(await outcomes(rateLimiter, [{ userId: 'honest', clientIp: '198.51.100.1' }])).toEqual(['ok']);
  });

  test('the address limit counts every user behind one address', async () => {
    const rateLimiter = limiter(disconnected(), { perUser: 100, perIp: 4 });
    const results = await outcomes(rateLimiter, times(6, (i) => ({ userId: `user-${i}`, clientIp: '2001:db8:1:2a00::' + (i + 1) })));
    expect(results.filter((r) => r === 'ok')).toHaveLength(4);
    expect(await outcomes(rateLimiter, [{ userId: 'elsewhere', clientIp: '2001:db8:1:2b00::1' }])).toEqual(['ok']);
  });

  test('limits of 0 are off and never touch Redis', async () => {
    const untouchable = {
      status: 'ready',
      pexpire: () => Promise.reject(new Error('touched')),
      hincrby: () => Promise.reject(new Error('touched')),
    } as unknown as Redis;
    const rateLimiter = limiter(untouchable, { onFallback: () => { throw new Error('fell back'); } });
    expect(rateLimiter.enabled).toBe(false);
    expect(await outcomes(rateLimiter, times(50, () => ({ userId: 'anyone', clientIp: '198.51.100.1' })))).toEqual(times(50, () => 'ok'));
  });
});

/** Redis as far as the limiter uses it (HINCRBY, PEXPIRE), counting the commands it gets. */
function countingRedis() {
  const hashes = new Map<string, Map<string, number>>();
  const expiries = new Map<string, number>();
  const sent = { counts: 0, expiries: 0 };
  const redis = {
    status: 'ready',
    async hincrby(key: string, field: string, by: number) {
      sent.counts += 1;
      const hash = hashes.get(key) ?? new Map<string, number>();
      hashes.set(key, hash);
      hash.set(field, (hash.get(field) ?? 0) + by);
      return hash.get(field)!;
    },
    async pexpire(key: string, ms: number) {
      sent.expiries += 1;
      // As Redis: no expiry for a key that does not exist (yet).
      if (!hashes.has(key)) return 0;
      expiries.set(key, ms);
      return 1;
    },
  } as unknown as Redis;
  return { redis, hashes, expiries, sent };
}

describe('claim rate limiter counting in Redis', () => {
  test('each count is one HINCRBY in a hash of its window, which is given its expiry once per window', async () => {
    const { redis, hashes, expiries, sent } = countingRedis();
    const rateLimiter = limiter(redis, { perUser: 5, perIp: 50, now: () => 7_250 });
    await rateLimiter.consume({ userId: 'alice', clientIp: '198.51.100.1' });
    await rateLimiter.consume({ userId: 'alice', clientIp: '198.51.100.1' });
    expect([...hashes.keys()].every((key) => /^ratelimit:claim:(user|ip):7:\d+$/.test(key))).toBe(true);
    expect([...hashes.values()].flatMap((hash) => [...hash.entries()]).sort()).toEqual([
      ['198.51.100.1', 2],
      ['alice', 2],
    ]);
    expect(sent).toEqual({ counts: 4, expiries: 2 });
    expect([...expiries.keys()].sort()).toEqual([...hashes.keys()].sort());
    expect(new Set(expiries.values())).toEqual(new Set([2000]));
  });

  test("a window's counts spread over many hashes, so a Redis Cluster spreads them over its shards", () => {
    const buckets = new Set(times(1000, (i) => windowKey('ratelimit:claim:user', `user-${i}`, 1)));
    expect(buckets.size).toBe(WINDOW_BUCKETS);
  });

  test('a key over its limit is refused for the rest of its window without asking Redis, and counts again in the next window', async () => {
    const { redis, sent } = countingRedis();
    let now = 10_100;
    const rateLimiter = limiter(redis, { perUser: 2, now: () => now });
    const bot = { userId: 'bot', clientIp: '198.51.100.1' };
    expect(await outcomes(rateLimiter, times(3, () => bot))).toEqual(['ok', 'ok', 'RATE_LIMITED']);
    expect(sent.counts).toBe(3);
    const refused = await rateLimiter.consume(bot).catch((error: GraphQLError) => error);
    expect((refused as GraphQLError).extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 900 });
    expect(await outcomes(rateLimiter, times(20, () => bot))).toEqual(times(20, () => 'RATE_LIMITED'));
    expect(sent.counts).toBe(3);

    now = 11_000;
    expect(await outcomes(rateLimiter, times(3, () => bot))).toEqual(['ok', 'ok', 'RATE_LIMITED']);
    expect(sent.counts).toBe(6);
  });

  test('instances sharing the Redis share the count', async () => {
    const { redis } = countingRedis();
    const [first, second] = [limiter(redis, { perUser: 3, now: () => 5_000 }), limiter(redis, { perUser: 3, now: () => 5_000 })];
    const bot = { userId: 'bot', clientIp: '198.51.100.1' };
    expect(await outcomes(first, times(2, () => bot))).toEqual(['ok', 'ok']);
    expect(await outcomes(second, times(2, () => bot))).toEqual(['ok', 'RATE_LIMITED']);
  });
});
