/**
 * Integration test stack: a private redis-server and MongoDB-compatible server on free ports,
 * and service instances started through the real composition root.
 */
import { loadConfig } from '../../src/config';
import { startMongoServer, startRedisServer, type EmbeddedServer } from '../../src/infra/embedded';
import { createLogger } from '../../src/logger';
import { startService, type RunningService } from '../../src/service';
import { Authenticator } from '../../src/access/auth';

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
    READ_COST_PER_IP: '0',
    READ_COST_PER_USER: '0',
    NEW_DOCUMENTS_PER_IP: '0',
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

/** What a suite needs to start a service in production mode on its stack (the secret is the tests'). */
export const productionEnv = (stack: Pick<Stack, 'redis' | 'mongo'>): Record<string, string> => ({
  NODE_ENV: 'production',
  REDIS_URL: stack.redis.url,
  MONGODB_URI: stack.mongo.url,
  JWT_SECRET: TEST_SECRET,
});

export interface SuiteService {
  readonly stack: Stack;
  readonly service: RunningService;
}

export interface SuiteServices {
  readonly stack: Stack;
  /** Instances sharing the stack, as several servers share one Redis and one MongoDB. */
  readonly services: RunningService[];
}

type SuiteEnv = Record<string, string> | ((stack: Stack) => Record<string, string>);

/**
 * One stack and `count` service instances on it for the whole suite, started before its first
 * test and stopped after its last. `env` is the services' environment, or a function of the stack.
 */
export function useTestServices(count: number, env: SuiteEnv = {}): SuiteServices {
  const suite = { services: [] } as unknown as { stack: Stack; services: RunningService[] };
  beforeAll(async () => {
    suite.stack = await startStack();
    const serviceEnv = typeof env === 'function' ? env(suite.stack) : env;
    suite.services = await Promise.all(Array.from({ length: count }, () => startTestService(suite.stack, serviceEnv)));
  });
  afterAll(async () => {
    await Promise.all(suite.services.map((service) => service?.stop()));
    await suite.stack?.stop();
  });
  return suite;
}

/** One stack and one service for the whole suite (see useTestServices). */
export function useTestService(env: SuiteEnv = {}): SuiteService {
  const suite = useTestServices(1, env);
  return {
    get stack() {
      return suite.stack;
    },
    get service() {
      return suite.services[0]!;
    },
  };
}
