import { availableParallelism } from 'node:os';
import { loadConfig, redisTargetEnv, type RedisTarget } from '../../src/config';
import { configErrorOf } from '../support/config';

const message = configErrorOf;

describe('configuration', () => {
  test('an empty environment gives development defaults with embedded dependencies', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ env: 'development', port: 4000, playgroundEnabled: true, introspectionEnabled: true });
    expect(config.redis).toBeUndefined();
    expect(config.mongoUri).toBeUndefined();
    expect(config.jwtSecret).toBeUndefined();
  });

  test('production refuses to start without each real dependency, naming the variable', () => {
    expect(message({ NODE_ENV: 'production' })).toBe('configuration error: REDIS_URL (or REDIS_CLUSTER_NODES, or REDIS_SENTINELS) must be set when NODE_ENV=production');
    expect(message({ NODE_ENV: 'production', REDIS_URL: 'redis://r:6379' })).toMatch(/^configuration error: MONGODB_URI/);
    expect(message({ NODE_ENV: 'production', REDIS_URL: 'redis://r:6379', MONGODB_URI: 'mongodb://m/db' })).toMatch(/^configuration error: JWT_SECRET/);
  });

  test('request budgets are on by default in production and off elsewhere, so the playground is never refused on a laptop', () => {
    const production = loadConfig({ NODE_ENV: 'production', REDIS_URL: 'redis://r:6379', MONGODB_URI: 'mongodb://m/db', JWT_SECRET: 'x'.repeat(32) });
    expect([production.readCostPerIp, production.readCostPerUser, production.newDocumentsPerIp]).toEqual([30_000, 3_000, 20]);
    const development = loadConfig({});
    expect([development.readCostPerIp, development.readCostPerUser, development.newDocumentsPerIp]).toEqual([0, 0, 0]);
    expect(loadConfig({ READ_COST_PER_IP: '500' }).readCostPerIp).toBe(500);
  });

  test('CLAIM_STRATEGY takes redis, db-lock or db-atomic, and production refuses both database strategies', () => {
    expect(loadConfig({}).claimStrategy).toBe('redis');
    expect(loadConfig({ CLAIM_STRATEGY: 'db-lock' }).claimStrategy).toBe('db-lock');
    expect(loadConfig({ CLAIM_STRATEGY: 'db-atomic' }).claimStrategy).toBe('db-atomic');
    expect(message({ CLAIM_STRATEGY: 'postgres' })).toMatch(/^configuration error: CLAIM_STRATEGY/);
    const production = { NODE_ENV: 'production', REDIS_URL: 'redis://r:6379', MONGODB_URI: 'mongodb://m/db', JWT_SECRET: 's'.repeat(32) };
    expect(loadConfig({ ...production, CLAIM_STRATEGY: 'redis' }).claimStrategy).toBe('redis');
    for (const strategy of ['db-lock', 'db-atomic']) {
      expect(message({ ...production, CLAIM_STRATEGY: strategy })).toBe(
        `configuration error: CLAIM_STRATEGY=${strategy} is for load comparison only and not allowed when NODE_ENV=production`,
      );
    }
  });

  test('production turns the playground and introspection off unless enabled', () => {
    const env = { NODE_ENV: 'production', REDIS_URL: 'redis://r:6379', MONGODB_URI: 'mongodb://m/db', JWT_SECRET: 's'.repeat(32) };
    expect(loadConfig(env)).toMatchObject({ playgroundEnabled: false, introspectionEnabled: false });
    expect(loadConfig({ ...env, PLAYGROUND_ENABLED: 'true' }).playgroundEnabled).toBe(true);
  });

  test.each([
    [{ REDIS_URL: 'http://x' }, /REDIS_URL/],
    [{ MONGODB_URI: 'mysql://x/db' }, /MONGODB_URI/],
    [{ MONGODB_URI: 'mongodb://host:27017' }, /MONGODB_URI must name the database/],
    [{ PORT: '70000' }, /PORT/],
    [{ PORT: 'abc' }, /PORT/],
    [{ JWT_SECRET: 'short' }, /JWT_SECRET must be at least 32 characters/],
    [{ CLAIM_RATE_PER_USER: '-1' }, /CLAIM_RATE_PER_USER/],
    [{ TRUSTED_PROXIES: '10.0.0.0/8, proxy.internal' }, /TRUSTED_PROXIES must be a comma-separated list/],
    [{ TRUSTED_PROXIES: '10.0.0.0/40' }, /TRUSTED_PROXIES/],
  ])('%j is refused with one line naming the variable', (env, expected) => {
    const text = message(env);
    expect(text).toMatch(expected);
    expect(text).not.toContain('\n');
  });

  test('TRUSTED_PROXIES lists addresses, ranges and proxy-addr names; unset trusts no proxy', () => {
    expect(loadConfig({}).trustedProxies).toEqual([]);
    expect(loadConfig({ TRUSTED_PROXIES: ' loopback, 10.0.0.0/8,fd00::1 ' }).trustedProxies).toEqual(['loopback', '10.0.0.0/8', 'fd00::1']);
  });

  test('WORKERS is a whole number or auto (one per core), and 1 by default', () => {
    expect(loadConfig({}).workers).toBe(1);
    expect(loadConfig({ WORKERS: '3' }).workers).toBe(3);
    expect(loadConfig({ WORKERS: 'auto' }).workers).toBe(availableParallelism());
    for (const bad of ['0', '1.5', 'many', '257']) {
      expect(message({ WORKERS: bad })).toBe('configuration error: WORKERS must be a whole number from 1 to 256, or auto');
    }
  });

  test('the compiled-document cache and the group commit are bounded, with one line naming the variable', () => {
    expect(loadConfig({})).toMatchObject({ compiledOperationsMax: 500, groupCommitMaxInFlight: 2 });
    expect(loadConfig({ COMPILED_OPERATIONS_MAX: '0' }).compiledOperationsMax).toBe(0);
    expect(message({ COMPILED_OPERATIONS_MAX: '-1' })).toMatch(/^configuration error: COMPILED_OPERATIONS_MAX/);
    expect(message({ GROUP_COMMIT_MAX_IN_FLIGHT: '0' })).toMatch(/^configuration error: GROUP_COMMIT_MAX_IN_FLIGHT/);
  });

  test('development and test listen on 127.0.0.1 unless HOST says otherwise; production on 0.0.0.0', () => {
    const production = { NODE_ENV: 'production', REDIS_URL: 'redis://r:6379', MONGODB_URI: 'mongodb://m/db', JWT_SECRET: 's'.repeat(32) };
    expect(loadConfig({}).host).toBe('127.0.0.1');
    expect(loadConfig({ NODE_ENV: 'test' }).host).toBe('127.0.0.1');
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(loadConfig(production).host).toBe('0.0.0.0');
    expect(loadConfig({ ...production, HOST: '10.1.2.3' }).host).toBe('10.1.2.3');
  });

  test('METRICS_PORT is a port; unset serves /metrics on the main port', () => {
    expect(loadConfig({}).metricsPort).toBeUndefined();
    expect(loadConfig({ METRICS_PORT: '9464' }).metricsPort).toBe(9464);
    for (const bad of ['70000', 'metrics', '-1']) expect(message({ METRICS_PORT: bad })).toMatch(/^configuration error: METRICS_PORT/);
  });

  test('empty strings count as unset', () => {
    expect(loadConfig({ REDIS_URL: '', PORT: '' })).toMatchObject({ redis: undefined, port: 4000 });
  });

  describe('the Redis target', () => {
    const production = { NODE_ENV: 'production', MONGODB_URI: 'mongodb://m/db', JWT_SECRET: 's'.repeat(32) };

    test('REDIS_URL is one Redis, REDIS_CLUSTER_NODES a cluster\'s seeds, REDIS_SENTINELS with REDIS_SENTINEL_MASTER a sentinel group', () => {
      expect(loadConfig({ REDIS_URL: 'rediss://user:pw@r.example:6380/0' }).redis).toEqual({ kind: 'single', url: 'rediss://user:pw@r.example:6380/0' });
      expect(loadConfig({ REDIS_CLUSTER_NODES: ' 10.0.0.1:7000, redis-2.internal:7001,[::1]:7002 ' }).redis).toEqual({
        kind: 'cluster',
        nodes: [
          { host: '10.0.0.1', port: 7000 },
          { host: 'redis-2.internal', port: 7001 },
          { host: '::1', port: 7002 },
        ],
      });
      expect(loadConfig({ REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_SENTINEL_MASTER: 'coupons' }).redis).toEqual({
        kind: 'sentinel',
        sentinels: [
          { host: 's1', port: 26379 },
          { host: 's2', port: 26379 },
        ],
        name: 'coupons',
      });
    });

    test('each of the three is enough in production', () => {
      expect(loadConfig({ ...production, REDIS_URL: 'redis://r:6379' }).redis?.kind).toBe('single');
      expect(loadConfig({ ...production, REDIS_CLUSTER_NODES: 'r1:7000' }).redis?.kind).toBe('cluster');
      expect(loadConfig({ ...production, REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_MASTER: 'm' }).redis?.kind).toBe('sentinel');
    });

    test.each([
      [{ REDIS_URL: 'redis://r:6379', REDIS_CLUSTER_NODES: 'r1:7000' }, 'REDIS_CLUSTER_NODES cannot be set together with REDIS_URL: set only one of REDIS_URL, REDIS_CLUSTER_NODES, REDIS_SENTINELS'],
      [{ REDIS_URL: 'redis://r:6379', REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINELS cannot be set together with REDIS_URL'],
      [{ REDIS_CLUSTER_NODES: 'r1:7000', REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINELS cannot be set together with REDIS_CLUSTER_NODES'],
      [{ ...production, REDIS_URL: 'redis://r:6379', REDIS_CLUSTER_NODES: 'r1:7000' }, 'REDIS_CLUSTER_NODES cannot be set together with REDIS_URL'],
      [{ REDIS_SENTINELS: 's1:26379' }, 'REDIS_SENTINEL_MASTER must name the master the sentinels watch when REDIS_SENTINELS is set'],
      [{ REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINEL_MASTER is set without REDIS_SENTINELS'],
      [{ REDIS_URL: 'redis://r:6379', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINEL_MASTER is set without REDIS_SENTINELS'],
      [{ REDIS_CLUSTER_NODES: 'r1' }, 'REDIS_CLUSTER_NODES must be a comma-separated list of host:port'],
      [{ REDIS_CLUSTER_NODES: 'redis://r1:7000' }, 'REDIS_CLUSTER_NODES must be a comma-separated list of host:port'],
      [{ REDIS_CLUSTER_NODES: 'r1:70000' }, 'REDIS_CLUSTER_NODES must be a comma-separated list of host:port'],
      [{ REDIS_CLUSTER_NODES: ' , ' }, 'REDIS_CLUSTER_NODES must be a comma-separated list of host:port'],
      [{ REDIS_SENTINELS: 's1:26379,s2', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINELS must be a comma-separated list of host:port'],
      [{ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_MASTER: 'my master' }, 'REDIS_SENTINEL_MASTER must be a master name without spaces'],
    ])('%j is refused with one line naming the variable', (env, expected) => {
      const text = message(env);
      expect(text).toContain(`configuration error: ${expected}`);
      expect(text).not.toContain('\n');
    });

    test.each<RedisTarget>([
      { kind: 'single', url: 'redis://127.0.0.1:6379' },
      { kind: 'cluster', nodes: [{ host: '127.0.0.1', port: 7000 }, { host: '::1', port: 7001 }] },
      { kind: 'sentinel', sentinels: [{ host: 's1', port: 26379 }], name: 'coupons' },
    ])('a worker reads the target the primary resolved, whatever the primary inherited: %j', (target) => {
      const inherited = { REDIS_CLUSTER_NODES: 'other:7000', REDIS_URL: 'redis://other:6379' };
      expect(loadConfig({ ...inherited, ...redisTargetEnv(target) }).redis).toEqual(target);
    });
  });
});
