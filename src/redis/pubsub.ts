/**
 * Pub/sub as the stock feed uses it, on each kind of Redis.
 *
 * Single Redis and Sentinel: plain PUBLISH/SUBSCRIBE. There is one server to publish to, so
 * sharding would gain nothing, and PUBLISH also works on the Redis versions before 7 that a
 * managed REDIS_URL endpoint may still run.
 *
 * Cluster: sharded pub/sub (Redis 7, SPUBLISH/SSUBSCRIBE). A plain PUBLISH on a cluster is
 * broadcast over the cluster bus to every node, so every message of every coupon would cost every
 * shard; a sharded message stays on the shard that owns its channel's slot, and the channel
 * carries the coupon's hash tag (see stockChannel), so that is the coupon's own shard. ioredis
 * keeps one subscriber connection per master (the client's `shardedSubscriber` option) and
 * subscribes again after a failover, announcing it with `subscribersReady`.
 */
import { Cluster } from 'ioredis';
import type { RedisClient } from './client';

export interface StockPublisher {
  publish(channel: string, message: string): Promise<unknown>;
}

export interface StockSubscriber {
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  /** (Re)subscribed after a reconnect or failover: messages sent meanwhile are gone. */
  on(event: 'ready', listener: () => void): unknown;
}

export function stockPublisher(client: RedisClient): StockPublisher {
  if (!(client instanceof Cluster)) return client;
  return { publish: (channel, message) => client.spublish(channel, message) };
}

/** On a cluster, `client` must have been created with `shardedSubscriber: true`. */
export function stockSubscriber(client: RedisClient): StockSubscriber {
  if (!(client instanceof Cluster)) return client;
  return {
    subscribe: (channel) => client.ssubscribe(channel),
    unsubscribe: (channel) => client.sunsubscribe(channel),
    on: (event: 'message' | 'ready', listener: (...args: string[]) => void) => client.on(event === 'message' ? 'smessage' : 'subscribersReady', listener),
  };
}
