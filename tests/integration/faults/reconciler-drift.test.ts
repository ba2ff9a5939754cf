/**
 * Fault: a coupon's Redis bookkeeping drifts from MongoDB (a leaked sequence, an issuance written
 * behind Redis's back, a lost winner entry). The reconciler must notice it on its own, rebuild the
 * coupon's state from MongoDB, and say so once in the log and once in the metrics.
 */
import { Redis } from 'ioredis';
import { Types } from 'mongoose';
import { couponKeys } from '../../../src/redis/scripts';
import type { ChildService } from '../../support/child-service';
import { createCoupon } from '../../support/graphql';
import { adminToken, userToken, type Stack } from '../../support/stack';
import { claimAs, expectConverges, expectNoOversellNoDoubleNothingLost, startFaultEnvironment, stopFaultEnvironment, within, type ClaimAnswer, type MongoView } from './contract';

let stack: Stack;
let service: ChildService;
let mongo: MongoView;
let redis: Redis;

beforeAll(async () => {
  ({ stack, service, mongo } = await startFaultEnvironment());
  redis = new Redis(stack.redis.url);
});

afterAll(async () => {
  redis?.disconnect();
  await stopFaultEnvironment({ stack, service, mongo });
});

const repairsOf = async (kind: string) => {
  const metrics = await (await fetch(`${service.url}/metrics`)).text();
  return Number(new RegExp(`^coupon_reconcile_repairs_total\\{kind="${kind}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
};
/** Scrapes share a render for 500 ms (src/http/metrics-endpoint.ts): a repair shows within a second. */
const expectRepairs = (kind: string, count: number) => within(2_000, `${count} ${kind} repair(s) in /metrics`, async () => (await repairsOf(kind)) === count, 100);
const repairLines = (kind: string) => service.logLines(/rebuilt the coupon state from mongodb/).filter((line) => line.kind === kind);

async function couponWithWinners(name: string, total: number, winners: number) {
  const couponId = await createCoupon(service.url, await adminToken(), { name, totalQuantity: total });
  const answers: ClaimAnswer[] = [];
  for (let i = 0; i < winners; i++) answers.push(await claimAs(service.url, couponId, `${name}-${i}`, await userToken(`${name}-${i}`)));
  expect(answers.map((a) => a.status)).toEqual(Array(winners).fill('ISSUED'));
  await within(5_000, 'no reservation pending', async () => (await redis.zcard(couponKeys(couponId).pending)) === 0);
  return { couponId, answers };
}

test('sequences leaked in Redis (remaining too low) are given back from MongoDB, with one log line and one metric', async () => {
  const { couponId, answers } = await couponWithWinners('leaked', 20, 5);
  await redis.hincrby(couponKeys(couponId).meta, 'seq', 3);
  const repairedMs = await expectConverges(service.url, mongo.models, couponId, 20);
  await expectRepairs('drift_redis_ahead', 1);
  expect(repairLines('redis_ahead')).toEqual([expect.objectContaining({ couponId, redisTaken: 8, mongoIssuances: 5 })]);
  // The rebuilt state hands out the next sequence, and winners keep theirs.
  const next = await claimAs(service.url, couponId, 'leaked-next', await userToken('leaked-next'));
  expect(next).toMatchObject({ status: 'ISSUED', remaining: 14, issuance: { sequence: 6 } });
  await expectNoOversellNoDoubleNothingLost(mongo.models, couponId, 20, [...answers, next]);
  console.log(`drift redis_ahead: repaired within ${repairedMs.toFixed(0)} ms`);
});

test('an issuance MongoDB holds but Redis does not count (remaining too high) is taken into account, and its holder gets it back', async () => {
  const { couponId, answers } = await couponWithWinners('behind', 20, 5);
  // As a write from before a Redis rebuild lands: MongoDB has it, Redis never heard of it.
  const lateId = new Types.ObjectId();
  await mongo.models.Issuance.create({ _id: lateId, couponId: new Types.ObjectId(couponId), userId: 'behind-late', sequence: 9, issuedAt: new Date() });
  const repairedMs = await expectConverges(service.url, mongo.models, couponId, 20);
  await expectRepairs('drift_redis_behind', 1);
  expect(repairLines('redis_behind')).toEqual([expect.objectContaining({ couponId, redisTaken: 5, mongoIssuances: 6 })]);
  const late = await claimAs(service.url, couponId, 'behind-late', await userToken('behind-late'));
  expect(late).toMatchObject({ status: 'ALREADY_ISSUED', remaining: 14, issuance: { id: lateId.toHexString(), sequence: 9 } });
  // Sequences 6-8, skipped by the late write, are handed out before 10.
  const next = await claimAs(service.url, couponId, 'behind-next', await userToken('behind-next'));
  expect(next).toMatchObject({ status: 'ISSUED', issuance: { sequence: 6 } });
  await expectNoOversellNoDoubleNothingLost(mongo.models, couponId, 20, [...answers, late, next]);
  console.log(`drift redis_behind: repaired within ${repairedMs.toFixed(0)} ms`);
});

test('a winner entry lost from Redis is restored from MongoDB, so its holder is answered without a new reservation', async () => {
  const { couponId, answers } = await couponWithWinners('forgotten', 20, 5);
  await redis.hdel(couponKeys(couponId).winners, 'forgotten-2');
  await within(10_000, 'the winners hash is repaired', async () => (await redis.hexists(couponKeys(couponId).winners, 'forgotten-2')) === 1);
  await expectRepairs('drift_winners_mismatch', 1);
  expect(repairLines('winners_mismatch')).toHaveLength(1);
  const again = await claimAs(service.url, couponId, 'forgotten-2', await userToken('forgotten-2'));
  expect(again).toMatchObject({ status: 'ALREADY_ISSUED', issuance: answers[2]!.issuance });
  expect(await redis.hget(couponKeys(couponId).meta, 'seq')).toBe('5');
  await expectConverges(service.url, mongo.models, couponId, 20);
});

test('a coupon whose Redis state agrees with MongoDB is left alone', async () => {
  const { couponId } = await couponWithWinners('in-sync', 10, 3);
  const epoch = await redis.hget(couponKeys(couponId).meta, 'epoch');
  // Several reconciliation passes (every 200 ms) go by.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect(await redis.hget(couponKeys(couponId).meta, 'epoch')).toBe(epoch);
  expect(service.logLines(/rebuilt the coupon state from mongodb/).filter((line) => line.couponId === couponId)).toEqual([]);
});
