/**
 * Claim rate limits per user and per client address, counted in Redis so that every instance
 * sharing the Redis shares them: fixed one-second windows, each window a few hashes of its own
 * (`ratelimit:claim:user:<window>:<bucket>`, the user id or address being the field), one
 * HINCRBY per count. Each instance gives each of a window's hashes its expiry once (PEXPIRE, two
 * windows), so a count is one plain command. Keys live under their own prefix, apart from
 * coupon keys.
 *
 * Hand-written rather than rate-limiter-flexible's Redis store (which this module used before):
 * that store runs a Lua script per count (SET NX EX, INCRBY, PTTL), about 9 µs of Redis CPU per
 * count, and the counts were most of what a claim cost Redis; a Lua call's own overhead is most
 * of that, and one plain command per count is the least Redis can do (`npx tsx
 * load/capacity/redis-cost.ts` measures both layouts). Windows follow each instance's clock;
 * instances a few ms apart split a count near a window's edge, which a per-second limit does not
 * notice.
 *
 * Once a key is over its limit, the rest of its window is refused here without asking Redis, so
 * a bot hammering this instance costs Redis one count per window.
 *
 * Fail-open to a local limit: when Redis is not connected, or does not answer within the
 * client's own command timeout, the same limits are counted in this instance's memory instead
 * (rate-limiter-flexible's memory limiter). So the limiter never fails a claim and never delays
 * it by more than that timeout, and a bot is still slowed while Redis struggles. Failing closed
 * would add nothing: the claim itself runs in Redis and answers SERVICE_UNAVAILABLE when Redis
 * is really gone. The timeout belongs to the client (a connection of the limiter's own, with a
 * short commandTimeout).
 *
 * On a Redis Cluster each count is one key (one slot), so it runs on whichever shard owns that
 * bucket: no cross-slot command, and a window's buckets spread over the shards. While the shard
 * of a key fails over, that key's counts fall back to memory like any Redis failure.
 */
import ipaddr from 'ipaddr.js';
import { LRUCache } from 'lru-cache';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { rateLimited } from '../errors';
import type { RedisClient } from '../redis/client';

/** Apart from `coupon:{id}:*`, so limiter keys can never be mistaken for coupon state. */
export const RATE_LIMIT_KEY_PREFIX = 'ratelimit:claim';

/** One window; the configured limits are per second. The request budgets (read-limiter.ts) count in the same windows. */
export const WINDOW_MS = 1000;

/** The window `now` (ms since the epoch) falls in. */
export const windowOf = (now: number) => Math.floor(now / WINDOW_MS);

/** Milliseconds from `now` to the start of the next window. */
export const untilNextWindow = (now: number) => (windowOf(now) + 1) * WINDOW_MS - now;
/** A window's key outlives it by a window: long enough for a late count, short enough to cost no memory. */
const KEY_TTL_MS = 2 * WINDOW_MS;

export interface ClaimRateLimiterOptions {
  /** Claims per second one user may make; 0 turns the limit off. */
  perUser: number;
  /** Claims per second from one client address (an IPv6 /56); 0 turns the limit off. */
  perIp: number;
  /** Called when a count fell back to memory (Redis slow or disconnected). */
  onFallback?: () => void;
  /** Where the counts live; another prefix is another, independent limit (cancel and redeem use `ratelimit:lifecycle`). */
  keyPrefix?: string;
  /** The clock windows are read from (tests). */
  now?: () => number;
}

export interface Claimant {
  userId: string;
  clientIp: string;
}

/**
 * The part of an address one client controls. An IPv6 end site usually gets a /56 or larger, so
 * limiting single IPv6 addresses would be no limit at all (the choice of express-rate-limit too).
 * IPv4-mapped IPv6 addresses count as their IPv4 address.
 */
export function addressKey(clientIp: string): string {
  let key = addressKeys.get(clientIp);
  if (key === undefined) {
    key = parseAddressKey(clientIp);
    addressKeys.set(clientIp, key);
  }
  return key;
}

/**
 * Keys of recently seen addresses. Every request is charged to its address, and parsing one
 * (ipaddr.js) cost about 9 µs of CPU per request in the claim profile (`load/bench/profile-claims.ts`),
 * while a drop's requests come from far fewer addresses than requests; a lookup costs well under
 * a microsecond. Bounded, so a flood of distinct addresses costs memory no more than the bound.
 */
const addressKeys = new LRUCache<string, string>({ max: 10_000 });

function parseAddressKey(clientIp: string): string {
  if (!ipaddr.isValid(clientIp)) return clientIp;
  const address = ipaddr.process(clientIp);
  if (address.kind() === 'ipv4') return address.toString();
  const [a, b, c, d] = (address as ipaddr.IPv6).parts as [number, number, number, number];
  return `${[a, b, c, d & 0xff00].map((part) => part.toString(16)).join(':')}::/56`;
}

/**
 * Buckets a window's counts are spread over: on a Redis Cluster each bucket is a key of its own,
 * so a window's counts spread over the shards instead of all landing on one.
 */
export const WINDOW_BUCKETS = 64;

/** FNV-1a over the key's UTF-16 code units: cheap, and spreads user ids and addresses evenly. */
function bucketOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % WINDOW_BUCKETS;
}

/**
 * The Redis hash counting `key` under the limit `scope` (its prefix and name, e.g.
 * `ratelimit:claim:user`) in window `window` (ms since the epoch / WINDOW_MS); `key` is its field.
 */
export const windowKey = (scope: string, key: string, window: number) => `${scope}:${window}:${bucketOf(key)}`;

/** One limit: a count per key per window, in Redis, or in memory while Redis cannot count. */
class WindowLimit {
  private readonly memory: RateLimiterMemory;
  /** Keys refused in `window`, refused again without Redis until it is over. */
  private blocked = new Set<string>();
  /** This window's hashes this instance has given their expiry. */
  private expiring = new Set<string>();
  private window = 0;

  constructor(
    private readonly redis: RedisClient,
    /** The limit's key prefix and name, e.g. `ratelimit:claim:user`. */
    private readonly scope: string,
    private readonly points: number,
    readonly keyOf: (claimant: Claimant) => string,
    private readonly onFallback: (() => void) | undefined,
    private readonly now: () => number,
  ) {
    this.memory = new RateLimiterMemory({ keyPrefix: scope, points, duration: WINDOW_MS / 1000 });
  }

  /** Resolves with the ms until the key may claim again when it is over the limit, else undefined. */
  async count(key: string): Promise<number | undefined> {
    const now = this.now();
    const window = windowOf(now);
    const untilNext = untilNextWindow(now);
    if (window !== this.window) {
      this.blocked = new Set();
      this.expiring = new Set();
      this.window = window;
    }
    if (this.blocked.has(key)) return untilNext;
    // Not queued behind a reconnect: counted in memory at once.
    if (this.redis.status !== 'ready') return this.inMemory(key);
    const hash = windowKey(this.scope, key, window);
    const counting = this.redis.hincrby(hash, key, 1);
    // After the count, in the same write: an expiry sent before the hash exists would set nothing.
    if (!this.expiring.has(hash)) this.expire(hash);
    let counted: number;
    try {
      counted = await counting;
      if (typeof counted !== 'number') throw new Error(`unexpected HINCRBY reply ${String(counted)}`);
    } catch {
      return this.inMemory(key);
    }
    if (counted <= this.points) return undefined;
    if (this.window === window) this.blocked.add(key);
    return untilNext;
  }

  /**
   * Once per window per hash on this instance, sent right after the count: the hash goes a window
   * after its own. When it set nothing (or failed), the next count of that hash in the window
   * sends it again; a hash whose expiry failed with no later count keeps its few fields until
   * removed by hand (`ratelimit:claim:*`), which needs PEXPIRE to fail just after HINCRBY succeeded
   * on the same connection.
   */
  private expire(hash: string): void {
    const expiring = this.expiring;
    expiring.add(hash);
    this.redis.pexpire(hash, KEY_TTL_MS).then(
      (set) => set === 1 || expiring.delete(hash),
      () => expiring.delete(hash),
    );
  }

  private async inMemory(key: string): Promise<number | undefined> {
    this.onFallback?.();
    try {
      await this.memory.consume(key);
      return undefined;
    } catch (refusal) {
      if (refusal instanceof RateLimiterRes) return refusal.msBeforeNext;
      // Anything else is a failure of the limiter itself: fail open.
      return undefined;
    }
  }
}

export class ClaimRateLimiter {
  private readonly limits: WindowLimit[] = [];

  /** `redis` should have a short commandTimeout: it is how long a claim may wait for a count. */
  constructor(redis: RedisClient, options: ClaimRateLimiterOptions) {
    const now = options.now ?? Date.now;
    const prefix = options.keyPrefix ?? RATE_LIMIT_KEY_PREFIX;
    const limit = (name: string, points: number, keyOf: (claimant: Claimant) => string) =>
      new WindowLimit(redis, `${prefix}:${name}`, points, keyOf, options.onFallback, now);
    if (options.perUser > 0) this.limits.push(limit('user', options.perUser, (c) => c.userId));
    if (options.perIp > 0) this.limits.push(limit('ip', options.perIp, (c) => addressKey(c.clientIp)));
  }

  get enabled(): boolean {
    return this.limits.length > 0;
  }

  /** Counts one claim against every enabled limit, in parallel; RATE_LIMITED if any is exceeded. */
  async consume(claimant: Claimant): Promise<void> {
    if (this.limits.length === 0) return;
    const waits = await Promise.all(this.limits.map((limit) => limit.count(limit.keyOf(claimant))));
    let retryAfterMs: number | undefined;
    for (const wait of waits) if (wait !== undefined) retryAfterMs = Math.max(retryAfterMs ?? 0, wait);
    if (retryAfterMs !== undefined) throw rateLimited(Math.max(1, Math.ceil(retryAfterMs)));
  }
}
