/**
 * Integration test stack: a private redis-server and MongoDB-compatible server on free ports,
 * and service instances started through the real composition root.
 */
import { loadConfig } from '../../src/config';
import { startMongoServer, startRedisServer, type EmbeddedServer } from '../../src/infra/embedded';
import { createLogger } from '../../src/logger';
import { startService, type RunningService } from '../../src/service';
import { Authenticator } from '../../src/services/auth';

export const TEST_SECRET = 'integration-test-secret-0123456789abcdef';
export const auth = new Authenticator(TEST_SECRET);

export interface Stack {
  redis: EmbeddedServer;
  mongo: EmbeddedServer;
  stop(): Promise<void>;
}

export async function startStack(database = `t${Date.now()}`): Promise<Stack> {
  const [redis, mongo] = await Promise.all([startRedisServer(), startMongoServer({ database })]);
  return { redis, mongo, stop: async () => void (await Promise.all([redis.stop(), mongo.stop()])) };
}

export async function startTestService(stack: Pick<Stack, 'redis' | 'mongo'>, env: Record<string, string> = {}): Promise<RunningService> {
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    CLAIM_RATE_PER_USER: '0',
    CLAIM_RATE_PER_IP: '0',
    // In-process, the test's own clients share the service's event loop: their lag is not the
    // service's overload. Admission control is tested on a service of its own (tests/integration/faults).
    MAX_CONCURRENT_REQUESTS: '0',
    MAX_EVENT_LOOP_LAG_MS: '0',
    ...env,
  });
  return startService(
    { ...config, redis: { kind: 'single', url: stack.redis.url }, mongoUri: stack.mongo.url, jwtSecret: TEST_SECRET },
    createLogger(config.logLevel),
  );
}

export const userToken = (sub: string) => auth.issue(sub);
export const adminToken = () => auth.issue('operator', { admin: true });
