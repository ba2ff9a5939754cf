/**
 * Fault: Redis is unreachable (its process stopped), then comes back on the same port. The
 * service must fail fast while it is gone and recover by itself, without a restart.
 */
import { startRedisServer, type EmbeddedServer } from '../../../src/infra/embedded';
import { healthStatus, type ChildService } from '../../support/child-service';
import { createCoupon } from '../../support/graphql';
import { adminToken, userToken, type Stack } from '../../support/stack';
import { claimAs, expectConverges, expectNoOversellNoDoubleNothingLost, startFaultEnvironment, stopFaultEnvironment, within, type ClaimAnswer, type MongoView } from './contract';

let stack: Stack;
let restarted: EmbeddedServer | undefined;
let service: ChildService;
let mongo: MongoView;

beforeAll(async () => {
  ({ stack, service, mongo } = await startFaultEnvironment());
});

afterAll(async () => {
  await stopFaultEnvironment({ stack, service, mongo });
  await restarted?.stop();
});

const timed = async <T>(work: () => Promise<T>) => {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
};

test('while Redis is down claims answer SERVICE_UNAVAILABLE and /healthz 503 within 3 s; once it is back, claims work again without a restart', async () => {
  const total = 50;
  const couponId = await createCoupon(service.url, await adminToken(), { name: 'Outage', totalQuantity: total });
  const users = Array.from({ length: 40 }, (_, i) => `outage-${i}`);
  const tokens = new Map(await Promise.all(users.map(async (u) => [u, await userToken(u)] as const)));
  const claim = (user: string) => claimAs(service.url, couponId, user, tokens.get(user)!);

  const before = await Promise.all(users.slice(0, 10).map(claim));
  expect(before.map((a) => a.status)).toEqual(Array(10).fill('ISSUED'));

  await stack.redis.stop();
  // Claims one after another and then all at once, from users with and without an issuance.
  const during: ClaimAnswer[] = [];
  for (const user of users.slice(5, 15)) during.push(await claim(user));
  during.push(...(await Promise.all(users.slice(15, 35).map(claim))));
  const health = await timed(() => healthStatus(service.url));
  expect(during.map((a) => a.code)).toEqual(Array(during.length).fill('SERVICE_UNAVAILABLE'));
  for (const answer of during) expect(answer.ms).toBeLessThan(3000);
  expect(health.value).toBe(503);
  expect(health.ms).toBeLessThan(3000);

  // Back on the same port, empty (no persistence): nobody restarts the service.
  restarted = await startRedisServer({ port: stack.redis.port });
  const recoveredMs = await within(10_000, 'a claim is answered again', async () => (await claim('outage-39')).status === 'ISSUED');
  expect(await healthStatus(service.url)).toBe(200);
  const after = await Promise.all(users.map(claim));
  expect(after.filter((a) => !a.status)).toEqual([]);
  for (const [i, answer] of before.entries()) expect(after[i]).toMatchObject({ status: 'ALREADY_ISSUED', issuance: answer.issuance });

  const stored = await expectNoOversellNoDoubleNothingLost(mongo.models, couponId, total, [...before, ...during, ...after]);
  expect(stored).toHaveLength(40);
  await expectConverges(service.url, mongo.models, couponId, total);
  const ms = during.map((a) => a.ms);
  console.log(
    `redis outage: ${during.length} claims answered SERVICE_UNAVAILABLE in ${Math.min(...ms).toFixed(0)}-${Math.max(...ms).toFixed(0)} ms, ` +
      `/healthz 503 in ${health.ms.toFixed(0)} ms; claims worked again ${recoveredMs.toFixed(0)} ms after redis came back`,
  );
});
