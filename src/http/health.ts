/**
 * GET /healthz: both dependencies answer a ping within the budget, or the service is unhealthy.
 */
import type { Redis } from 'ioredis';
import type { Connection } from 'mongoose';
import { withDeadline } from '../errors';

const PING_BUDGET_MS = 1500;

export interface Health {
  ok: boolean;
  redis: 'up' | 'down';
  mongodb: 'up' | 'down';
}

export async function checkHealth(redis: Redis, mongo: Connection): Promise<Health> {
  const probe = async (ping: () => Promise<unknown>) => {
    try {
      await withDeadline(ping(), PING_BUDGET_MS, 'health probe');
      return 'up' as const;
    } catch {
      return 'down' as const;
    }
  };
  const [redisState, mongoState] = await Promise.all([
    probe(() => redis.ping()),
    probe(() => mongo.db!.admin().ping()),
  ]);
  return { ok: redisState === 'up' && mongoState === 'up', redis: redisState, mongodb: mongoState };
}
