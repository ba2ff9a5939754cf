/**
 * Claim rate limits per user and per client address, counted in Redis so that every instance
 * sharing the Redis shares them (rate-limiter-flexible: one small INCR-with-expiry script per
 * limit, fixed one-second windows). Keys live under their own prefix, apart from coupon keys.
 *
 * Fail-open to a local limit: when Redis is not connected, or does not answer within the
 * client's own command timeout, the same limits are counted in this instance's memory instead.
 * So the limiter never fails a claim and never delays it by more than that timeout, and a bot is
 * still slowed while Redis struggles. Failing closed would add nothing: the claim itself runs in
 * Redis and answers SERVICE_UNAVAILABLE when Redis is really gone. The timeout belongs to the
 * client (a connection of the limiter's own, with a short commandTimeout) rather than to the
 * library's timeout wrapper, which adds a timer and two promises per count on the claim path.
 *
 * On a Redis Cluster each count is one key (`ratelimit:claim:user:<id>`, one script call), so it
 * runs on whichever shard owns that key: no cross-slot command, and users spread over the shards.
 * While the shard of a key fails over, that key's counts fall back to memory like any Redis failure.
 */
import ipaddr from 'ipaddr.js';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type IRateLimiterOptions,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import { rateLimited } from '../errors';
import type { RedisClient } from '../redis/client';

/** Apart from `coupon:{id}:*`, so limiter keys can never be mistaken for coupon state. */
export const RATE_LIMIT_KEY_PREFIX = 'ratelimit:claim';

/** One window; the configured limits are per second. */
const WINDOW_SECONDS = 1;

export interface ClaimRateLimiterOptions {
  /** Claims per second one user may make; 0 turns the limit off. */
  perUser: number;
  /** Claims per second from one client address (an IPv6 /56); 0 turns the limit off. */
  perIp: number;
  /** Called when a count fell back to memory (Redis slow or disconnected). */
  onFallback?: () => void;
  /** Where the counts live; another prefix is another, independent limit (cancel and redeem use `ratelimit:lifecycle`). */
  keyPrefix?: string;
}

export interface Claimant {
  userId: string;
  clientIp: string;
}

interface Limit {
  limiter: RateLimiterAbstract;
  key: (claimant: Claimant) => string;
}

/**
 * The part of an address one client controls. An IPv6 end site usually gets a /56 or larger, so
 * limiting single IPv6 addresses would be no limit at all (the choice of express-rate-limit too).
 * IPv4-mapped IPv6 addresses count as their IPv4 address.
 */
export function addressKey(clientIp: string): string {
  if (!ipaddr.isValid(clientIp)) return clientIp;
  const address = ipaddr.process(clientIp);
  if (address.kind() === 'ipv4') return address.toString();
  const [a, b, c, d] = (address as ipaddr.IPv6).parts as [number, number, number, number];
  return `${[a, b, c, d & 0xff00].map((part) => part.toString(16)).join(':')}::/56`;
}

/** The memory limiter that stands in for Redis, reporting each time it is used. */
class FallbackLimiter extends RateLimiterMemory {
  constructor(
    options: IRateLimiterOptions,
    private readonly onUse: () => void,
  ) {
    super(options);
  }

  override consume(key: string | number, points?: number, options?: Record<string, unknown>): Promise<RateLimiterRes> {
    this.onUse();
    return super.consume(key, points, options);
  }
}

export class ClaimRateLimiter {
  private readonly limits: Limit[] = [];

  /** `redis` should have a short commandTimeout: it is how long a claim may wait for a count. */
  constructor(redis: RedisClient, options: ClaimRateLimiterOptions) {
    const build = (name: string, points: number): RateLimiterAbstract => {
      const keyPrefix = `${options.keyPrefix ?? RATE_LIMIT_KEY_PREFIX}:${name}`;
      const memory = new FallbackLimiter({ keyPrefix, points, duration: WINDOW_SECONDS }, () => options.onFallback?.());
      return new RateLimiterRedis({
        storeClient: redis,
        keyPrefix,
        points,
        duration: WINDOW_SECONDS,
        // Not queued behind a reconnect: counted in memory at once.
        rejectIfRedisNotReady: true,
        // Once over the limit, the rest of the window is refused here without asking Redis,
        // so a bot hammering this instance costs no Redis round trips.
        inMemoryBlockOnConsumed: points + 1,
        insuranceLimiter: memory,
      });
    };
    if (options.perUser > 0) this.limits.push({ limiter: build('user', options.perUser), key: (c) => c.userId });
    if (options.perIp > 0) this.limits.push({ limiter: build('ip', options.perIp), key: (c) => addressKey(c.clientIp) });
  }

  get enabled(): boolean {
    return this.limits.length > 0;
  }

  /** Counts one claim against every enabled limit, in parallel; RATE_LIMITED if any is exceeded. */
  async consume(claimant: Claimant): Promise<void> {
    if (this.limits.length === 0) return;
    const results = await Promise.allSettled(this.limits.map(({ limiter, key }) => limiter.consume(key(claimant))));
    let retryAfterMs: number | undefined;
    for (const result of results) {
      // Anything but a RateLimiterRes is a failure of the limiter itself: fail open.
      if (result.status === 'rejected' && result.reason instanceof RateLimiterRes) {
        retryAfterMs = Math.max(retryAfterMs ?? 0, result.reason.msBeforeNext);
      }
    }
    if (retryAfterMs !== undefined) throw rateLimited(Math.max(1, Math.ceil(retryAfterMs)));
  }
}
