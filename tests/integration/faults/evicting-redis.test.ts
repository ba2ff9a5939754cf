/**
 * Fault: the Redis the service is pointed at may evict keys (maxmemory-policy other than
 * noeviction). Evicting a coupon's state could re-open sold-out stock, so the service must not start.
 */
import { startMongoServer, startRedisServer, type EmbeddedServer } from '../../../src/infra/embedded';
import { runUntilExit } from '../../support/child-service';

let redis: EmbeddedServer;
let mongo: EmbeddedServer;

beforeAll(async () => {
  [redis, mongo] = await Promise.all([startRedisServer({ settings: { 'maxmemory-policy': 'allkeys-lru' } }), startMongoServer({ database: 'evicting' })]);
});

afterAll(async () => {
  await Promise.all([redis?.stop(), mongo?.stop()]);
});

test('pointed at a Redis that evicts keys, the service refuses to start with one line naming REDIS_URL and a non-zero exit', async () => {
  const started = performance.now();
  const exit = await runUntilExit({ redisUrl: redis.url, mongoUri: mongo.url });
  expect(exit.signal).toBeNull();
  expect(exit.code).not.toBe(0);
  const lines = exit.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^REDIS_URL: .*maxmemory-policy.*allkeys-lru.*noeviction/);
  // Nothing was served: no "ready" line on stdout either.
  expect(exit.stdout).not.toMatch(/coupon service ready/);
  console.log(`evicting redis: refused in ${(performance.now() - started).toFixed(0)} ms with: ${lines[0]}`);
});
