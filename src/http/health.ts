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

/**
 * Probes both dependencies every `intervalMs` (one probe at a time) and reports each result, so
 * that their health is exported as metrics without waiting for someone to ask GET /healthz.
 * Returns the function that stops it.
 */
export function watchHealth(redis: RedisClient, mongo: Connection, onResult: (health: Health) => void, intervalMs = 1000): () => Promise<void> {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const probe = () => {
    running = checkHealth(redis, mongo)
      .then((health) => {
        if (!stopped) onResult(health);
      })
      .finally(() => {
        running = undefined;
        if (!stopped) timer = setTimeout(probe, intervalMs).unref();
      });
  };
  probe();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}
