/**
 * The service's connections: the Redis clients (commands, stock publisher and subscriber, rate
 * limiter) and MongoDB with its models and indexes. A failure names the variable to fix.
 */
import type { Redis } from 'ioredis';
import type { Connection } from 'mongoose';
import type { Logger } from 'pino';
import { connectMongo } from '../mongo/connection';
import { ensureIndexes, registerModels, type Models } from '../mongo/models';
import { assertNoEviction, createRedisClient } from '../redis/client';

/** Longest a claim waits for the rate limiter's Redis before it counts in memory (it fails open). */
const RATE_LIMIT_TIMEOUT_MS = 250;

export interface Connections {
  /** Claim scripts, reads and the reconciler. */
  redis: Redis;
  /** Pub/sub needs connections of its own: a subscribed ioredis client can run nothing else. */
  publisher: Redis;
  subscriber: Redis;
  /** The limiter's own connection, so its short command timeout applies to its counts alone. */
  limiterRedis: Redis;
  mongo: Connection;
  models: Models;
  /** Quits every connection (waiting for replies in flight), or drops it when it cannot. */
  close(): Promise<void>;
}

export async function openConnections(settings: { redisUrl: string; mongoUri: string }, logger: Logger): Promise<Connections> {
  const redis = createRedisClient(settings.redisUrl, { name: 'coupon-commands', logger, autoPipelining: true });
  const publisher = createRedisClient(settings.redisUrl, { name: 'coupon-stock-publisher', logger });
  const subscriber = createRedisClient(settings.redisUrl, { name: 'coupon-stock-subscriber', logger });
  const limiterRedis = createRedisClient(settings.redisUrl, { name: 'coupon-rate-limiter', logger, commandTimeoutMs: RATE_LIMIT_TIMEOUT_MS });
  const clients = [redis, publisher, subscriber, limiterRedis];
  const dropRedis = () => clients.forEach((client) => client.disconnect());

  try {
    await Promise.all(clients.map((client) => client.connect()));
  } catch (error) {
    dropRedis();
    throw new Error(`REDIS_URL: cannot connect to redis (${(error as Error).message})`);
  }
  await assertNoEviction(redis).catch((error) => {
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

  const close = async () => {
    await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
    await mongo.close();
  };
  return { redis, publisher, subscriber, limiterRedis, mongo, models, close };
}
