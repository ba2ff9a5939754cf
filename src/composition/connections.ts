/**
 * The service's connections: the Redis clients (commands, stock publisher and subscriber, rate
 * limiter) and MongoDB with its models and indexes. A failure names the variable to fix.
 */
import type { Connection } from 'mongoose';
import type { Logger } from 'pino';
import { connectMongo } from '../mongo/connection';
import { ensureIndexes, registerModels, type Models } from '../mongo/models';
import type { RedisTarget } from '../config';
import { assertNoEviction, connectRedis, createRedisClient, type RedisClient } from '../redis/client';

/** Longest a claim waits for the rate limiter's Redis before it counts in memory (it fails open). */
const RATE_LIMIT_TIMEOUT_MS = 250;
/** Connections of the events' pool: the relay, the leases and the outcomes of one instance. */
const EVENTS_POOL_SIZE = 4;

export interface Connections {
  /** Claim scripts, reads and the reconciler. */
  redis: RedisClient;
  /**
   * Pub/sub needs connections of its own: a subscribed ioredis client can run nothing else. On a
   * cluster, stock goes over sharded pub/sub: the subscriber keeps a connection per master.
   */
  publisher: RedisClient;
  subscriber: RedisClient;
  /** The limiter's own connection, so its short command timeout applies to its counts alone. */
  limiterRedis: RedisClient;
  mongo: Connection;
  models: Models;
  /** Webhook deliveries' own connection (a small pool), so they never queue ahead of claims. */
  eventsMongo: Connection;
  /** Quits every connection (waiting for replies in flight), or drops it when it cannot. */
  close(): Promise<void>;
}

export async function openConnections(settings: { redis: RedisTarget; mongoUri: string }, logger: Logger): Promise<Connections> {
  const target = settings.redis;
  const redis = createRedisClient(target, { name: 'coupon-commands', logger, autoPipelining: true, immediateCommands: ['drawEnter'] });
  const publisher = createRedisClient(target, { name: 'coupon-stock-publisher', logger });
  const subscriber = createRedisClient(target, { name: 'coupon-stock-subscriber', logger, shardedSubscriber: true });
  // Plain commands only (no script), so auto-pipelining is safe: a tick's counts go in one write.
  const limiterRedis = createRedisClient(target, { name: 'coupon-rate-limiter', logger, commandTimeoutMs: RATE_LIMIT_TIMEOUT_MS, autoPipelining: true });
  const clients = [redis, publisher, subscriber, limiterRedis];
  const dropRedis = () => clients.forEach((client) => client.disconnect());

  try {
    await Promise.all(clients.map((client) => connectRedis(client, target)));
  } catch (error) {
    dropRedis();
    throw error;
  }
  await assertNoEviction(redis, target).catch((error) => {
    dropRedis();
    throw error;
  });

  let mongo: Connection;
  try {
    mongo = await connectMongo(settings.mongoUri, logger);
  } catch (error) {
    dropRedis();
    throw new Error(`MONGODB_URI: cannot connect to mongodb (${(error as Error).message})`);
  }
  const models = registerModels(mongo);
  await ensureIndexes(models);
  const eventsMongo = await connectMongo(settings.mongoUri, logger, { name: 'events', maxPoolSize: EVENTS_POOL_SIZE });

  const close = async () => {
    await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
    await Promise.all([mongo.close(), eventsMongo.close()]);
  };
  return { redis, publisher, subscriber, limiterRedis, mongo, models, eventsMongo, close };
}
