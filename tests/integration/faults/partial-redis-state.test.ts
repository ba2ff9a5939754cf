/**
 * Fault: part of a coupon's Redis state is lost (a failover to a replica that missed writes, an
 * operator's DEL), one key at a time. Redis cannot do this by itself here (atomic scripts,
 * noeviction), but MongoDB is the arbiter: a lost key may cost a retry, never a false answer.
 * The reconciler runs only at start-up here, so what is checked is what the claims themselves do.
 */
import { Redis } from 'ioredis';
import { Types } from 'mongoose';
import { createLogger } from '../../../src/logger';
import { createRedisClient } from '../../../src/redis/client';
import { adoptArgs, claimArgs, couponKeys, parseClaimReply, revokeArgs } from '../../../src/redis/scripts';
import type { ChildService } from '../../support/child-service';
import { COUPON, createCoupon } from '../../support/graphql';
import { adminToken, userToken, type Stack } from '../../support/stack';
import {
  claimAs,
  claimLikeAClient,
  expectConverges,
  expectNoOversellNoDoubleNothingLost,
  postGraphQL,
  startFaultEnvironment,
  stopFaultEnvironment,
  within,
  type ClaimAnswer,
  type MongoView,
} from './contract';

let stack: Stack;
let service: ChildService;
let mongo: MongoView;
/** The test's own connection, with the service's scripts defined on it. */
let redis: Redis;

beforeAll(async () => {
  ({ stack, service, mongo } = await startFaultEnvironment({ RECONCILE_INTERVAL_MS: '600000' }));
  redis = createRedisClient({ kind: 'single', url: stack.redis.url }, { name: 'partial-state-test', logger: createLogger('silent') }) as Redis;
  await redis.connect();
});

afterAll(async () => {
  stack?.mongo.signal('SIGCONT');
  redis?.disconnect();
  await stopFaultEnvironment({ stack, service, mongo });
});

const claim = async (couponId: string, user: string) => claimAs(service.url, couponId, user, await userToken(user));

async function soldOutCoupon(name: string, total: number) {
  const couponId = await createCoupon(service.url, await adminToken(), { name, totalQuantity: total });
  const answers: ClaimAnswer[] = [];
  for (let i = 0; i < total; i++) answers.push(await claim(couponId, `${name}-${i}`));
  expect(answers.map((a) => a.status)).toEqual(Array(total).fill('ISSUED'));
  await within(5_000, 'no reservation pending', async () => (await redis.zcard(couponKeys(couponId).pending)) === 0);
  return { couponId, answers };
}

test('with the pending marks lost while MongoDB is down, a retry is not told ALREADY_ISSUED for an issuance MongoDB never stored', async () => {
  const total = 3;
  const couponId = await createCoupon(service.url, await adminToken(), { name: 'Pending lost', totalQuantity: total });
  const keys = couponKeys(couponId);
  const answers: ClaimAnswer[] = [];
  stack.mongo.signal('SIGSTOP');
  try {
    const first = await claim(couponId, 'retrier');
    answers.push(first);
    expect(first.code).toBe('SERVICE_UNAVAILABLE');
    // Redis holds the reservation, waiting for its write; then the pending marks are lost.
    expect(await redis.hexists(keys.winners, 'retrier')).toBe(1);
    await redis.del(keys.pending);
    const retry = await claim(couponId, 'retrier');
    answers.push(retry);
    // Nothing proves the reservation durable, and MongoDB cannot be asked.
    expect(retry.status).toBeUndefined();
    expect(retry.code).toBe('SERVICE_UNAVAILABLE');
  } finally {
    stack.mongo.signal('SIGCONT');
  }
  // Once MongoDB answers, the user ends up with an issuance MongoDB holds, as answered.
  const after = await claimLikeAClient(service.url, couponId, 'retrier', await userToken('retrier'));
  answers.push(...after);
  expect(['ISSUED', 'ALREADY_ISSUED']).toContain(after.at(-1)!.status);
  const again = await claim(couponId, 'retrier');
  answers.push(again);
  expect(again).toMatchObject({ status: 'ALREADY_ISSUED', issuance: after.at(-1)!.issuance });
  const stored = await expectNoOversellNoDoubleNothingLost(mongo.models, couponId, total, answers);
  expect(stored.map((doc) => doc.userId)).toEqual(['retrier']);
  await expectConverges(service.url, mongo.models, couponId, total);
});

test('with the winners hash lost after a sell-out, every winner is still told ALREADY_ISSUED with their issuance, and everyone else SOLD_OUT', async () => {
  const total = 5;
  const { couponId, answers } = await soldOutCoupon('Winners lost', total);
  await redis.del(couponKeys(couponId).winners);

  const again = await Promise.all(answers.map((a) => claim(couponId, a.user)));
  expect(again.map((a) => ({ status: a.status, issuance: a.issuance }))).toEqual(answers.map((a) => ({ status: 'ALREADY_ISSUED', issuance: a.issuance })));
  const other = await claim(couponId, 'winners-lost-latecomer');
  expect(other).toMatchObject({ status: 'SOLD_OUT', remaining: 0 });
  // And the hash itself comes back from MongoDB, without waiting for the reconciler.
  await within(5_000, 'the winners hash is rebuilt', async () => (await redis.hlen(couponKeys(couponId).winners)) === total);
  await expectNoOversellNoDoubleNothingLost(mongo.models, couponId, total, [...answers, ...again, other]);
  await expectConverges(service.url, mongo.models, couponId, total);
});

/**
 * A reservation for `user` as the claim script makes it, with `meta` lost before its repair
 * (`repair`) runs: the repair must not leave a half-made meta that passes for a loaded coupon.
 */
async function metaLostBeforeARepair(name: string, repair: (keys: ReturnType<typeof couponKeys>, user: string, reserved: { sequence: number; issuedAtMs: number; issuanceId: string }) => Promise<number>) {
  const total = 10;
  const couponId = await createCoupon(service.url, await adminToken(), { name, totalQuantity: total });
  const first = await claim(couponId, `${name}-first`);
  expect(first.status).toBe('ISSUED');
  const keys = couponKeys(couponId);
  const reply = parseClaimReply(await redis.couponClaim(...claimArgs(keys, `${name}-dup`, new Types.ObjectId().toHexString())));
  expect(reply.status).toBe('ISSUED');
  await redis.del(keys.meta);
  expect(await repair(keys, `${name}-dup`, reply.winner!)).toBe(1);

  // Read from MongoDB again: the coupon is claimable, with the stock MongoDB says.
  await expectConverges(service.url, mongo.models, couponId, total, 5_000);
  const read = (await postGraphQL(service.url, COUPON, { id: couponId })).data!.coupon as { remaining: number; status: string };
  expect(read.status).toBe('ACTIVE');
  const next = await claim(couponId, `${name}-next`);
  expect(next.status).toBe('ISSUED');
  expect(await redis.hget(keys.meta, 'total')).toBe(String(total));
  await expectConverges(service.url, mongo.models, couponId, total, 5_000);
}

test('with meta lost before an adopt lands, the coupon is rebuilt from MongoDB instead of left unclaimable', async () => {
  await metaLostBeforeARepair('adopt-meta', async (keys, user, reserved) => {
    // The user already held an issuance in MongoDB that Redis did not know.
    const stored = { _id: new Types.ObjectId(), couponId: new Types.ObjectId(/\{(.+)\}/.exec(keys.meta)![1]), userId: user, sequence: 7, issuedAt: new Date() };
    await mongo.models.Issuance.create(stored);
    return redis.couponAdopt(...adoptArgs(keys, user, reserved, { sequence: 7, issuedAtMs: stored.issuedAt.getTime(), issuanceId: stored._id.toHexString() }));
  });
});

test('with meta lost before a revoke lands, the coupon is rebuilt from MongoDB instead of left unclaimable', async () => {
  await metaLostBeforeARepair('revoke-meta', async (keys, user, reserved) => {
    // Another user held the reservation's sequence in MongoDB.
    const holder = { _id: new Types.ObjectId(), couponId: new Types.ObjectId(/\{(.+)\}/.exec(keys.meta)![1]), userId: 'revoke-meta-holder', sequence: reserved.sequence, issuedAt: new Date() };
    await mongo.models.Issuance.create(holder);
    return redis.couponRevoke(
      ...revokeArgs(keys, user, reserved.issuanceId, holder.userId, { sequence: holder.sequence, issuedAtMs: holder.issuedAt.getTime(), issuanceId: holder._id.toHexString() }),
    );
  });
});
