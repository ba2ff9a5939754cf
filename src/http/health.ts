/**
 * GET /healthz: both dependencies answer a ping within the budget, or the service is unhealthy.
 * On a Redis Cluster every master must answer: with one down, its coupons cannot be claimed.
 */
import type { Connection } from 'mongoose';
import { withDeadline } from '../errors';
import { pingEveryMaster, type RedisClient } from '../redis/client';

const PING_BUDGET_MS = 1500;

export interface Health {
  ok: boolean;
  redis: 'up' | 'down';
  mongodb: 'up' | 'down';
}

export async function checkHealth(redis: RedisClient, mongo: Connection): Promise<Health> {
  const probe = async (ping: () => Promise<unknown>) => {
    try {
      await withDeadline(ping(), PING_BUDGET_MS, 'health probe');
      return 'up' as const;
    } catch {
      return 'down' as const;
    }
  };
  const [redisState, mongoState] = await Promise.all([
    probe(() => pingEveryMaster(redis)),
    probe(() => mongo.db!.admin().ping()),
  ]);
  return { ok: redisState === 'up' && mongoState === 'up', redis: redisState, mongodb: mongoState };
}
