/**
 * Builds Redis connections with explicit timeouts, so a lost or stalled Redis turns into a fast
 * error instead of a hang, and with the coupon scripts defined on every command client.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { defineCouponScripts } from './scripts';

export interface RedisClientOptions {
  /** Shown in CLIENT LIST and in logs. */
  name: string;
  logger: Logger;
  /** Per-command budget; the claim path must answer within the contract's 3 s. */
  commandTimeoutMs?: number;
  /**
   * Send every command issued in one event-loop tick in one socket write. A burst of claims is
   * hundreds of scripts per tick, and one write per command was a fifth of the service's CPU.
   * Only for clients whose scripts are all defined up front: ioredis copies them into each
   * pipeline when it is created (a lazily defined script, as rate-limiter-flexible's, breaks it).
   */
  autoPipelining?: boolean;
}

export function createRedisClient(url: string, options: RedisClientOptions): Redis {
  const log = options.logger.child({ redis: options.name });
  const client = new Redis(url, {
    connectionName: options.name,
    commandTimeout: options.commandTimeoutMs ?? 1000,
    connectTimeout: 1000,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 1000),
    lazyConnect: true,
    enableAutoPipelining: options.autoPipelining ?? false,
  });
  let down = false;
  client.on('error', (error: Error) => {
    if (!down) log.error({ err: error.message }, 'redis connection error');
    down = true;
  });
  client.on('ready', () => {
    if (down) log.warn('redis connection recovered');
    down = false;
  });
  defineCouponScripts(client);
  return client;
}

/** Redis must never evict a coupon's keys: losing `meta` silently would re-open sold-out stock. */
export async function assertNoEviction(client: Redis): Promise<void> {
  const reply = (await client.config('GET', 'maxmemory-policy')) as string[];
  const policy = reply[1];
  if (policy !== 'noeviction') {
    throw new Error(`REDIS_URL: maxmemory-policy is "${policy}", it must be "noeviction" (coupon state must never be evicted)`);
  }
}
