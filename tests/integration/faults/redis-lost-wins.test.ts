/**
 * Fault: Redis comes back without its last acknowledged wins, as a replica promoted by a failover
 * (or a server restarted from an older snapshot) does. Its state is consistent, only older: the
 * lost winner is not listed, and the unit has been reserved again for someone else whose write
 * is still pending, so the script reads "sold out". The lost winner, who holds a live issuance in
 * MongoDB, must hear ALREADY_ISSUED with it, never SOLD_OUT (guarantee 8). Likewise a lost raise:
 * Redis reads "sold out" while MongoDB's total leaves units free, and a claim must get one. And a
 * lost cancel: Redis still counts the returned unit as taken, but an operator's change answers the
 * stock MongoDB holds. And a lost confirmation: Redis holds the win as still being written, and
 * the winner's next claim shows the issuance as MongoDB holds it, redeemed since.
 */
import { Redis } from 'ioredis';
import { Types } from 'mongoose';
import { couponKeys, encodeWinner } from '../../../src/redis/scripts';
import type { ChildService } from '../../support/child-service';
import { createCoupon, gql } from '../../support/graphql';
import { adminToken, userToken, type Stack } from '../../support/stack';
import { cancelAs, claimAs, redeemAs, expectNoOversellNoDoubleNothingLost, startFaultEnvironment, stopFaultEnvironment, within, type ClaimAnswer, type FaultEnvironment, type MongoView } from './contract';

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

/**
 * A fault environment of the test's own whose reconciler passes once at start, then not for a
 * minute (what Redis lost stays lost unless a request repairs it), and a direct Redis connection
 * to stage the promoted replica's state.
 */
async function withoutScheduledRepairs(run: (env: FaultEnvironment, direct: Redis) => Promise<void>): Promise<void> {
  const env = await startFaultEnvironment({ RECONCILE_INTERVAL_MS: '60000' });
  const direct = new Redis(env.stack.redis.url);
  try {
    await run(env, direct);
  } finally {
    direct.disconnect();
    await stopFaultEnvironment(env);
  }
}

test('a winner whose win Redis lost in a failover hears ALREADY_ISSUED with their issuance, not SOLD_OUT', async () => {
  const couponId = await createCoupon(service.url, await adminToken(), { name: 'lost', totalQuantity: 3 });
  const answers: ClaimAnswer[] = [];
  for (let i = 0; i < 3; i++) answers.push(await claimAs(service.url, couponId, `lost-${i}`, await userToken(`lost-${i}`)));
  expect(answers.map((a) => a.status)).toEqual(['ISSUED', 'ISSUED', 'ISSUED']);
  await within(5_000, 'no reservation pending', async () => (await redis.zcard(couponKeys(couponId).pending)) === 0);

  // The promoted replica: lost-2's win is gone, and its sequence was reserved again by another
  // user whose MongoDB write is still pending (the reconciler leaves it for a few seconds).
  const keys = couponKeys(couponId);
  const lost = answers[2]!.issuance!;
  await redis.hdel(keys.winners, 'lost-2');
  await redis.hset(keys.winners, 'lost-other', encodeWinner({ sequence: lost.sequence, issuedAtMs: Date.now(), issuanceId: new Types.ObjectId().toHexString(), durable: false }));
  await redis.zadd(keys.pending, Date.now(), 'lost-other');
  // The failover as the service sees it: its connections to Redis drop and are made again.
  await redis.call('CLIENT', 'KILL', 'TYPE', 'normal').catch(() => undefined);
  await within(5_000, 'the service noticed', async () => service.logLines(/may have lost acknowledged writes/).length > 0, 50);

  const again = await claimAs(service.url, couponId, 'lost-2', await userToken('lost-2'));
  expect(again).toMatchObject({ status: 'ALREADY_ISSUED', issuance: { id: lost.id, sequence: lost.sequence } });
  const late = await claimAs(service.url, couponId, 'lost-late', await userToken('lost-late'));
  expect(late.status).toBe('SOLD_OUT');

  // Once the reconciler has settled the pending reservation (revoked: lost-2 holds the sequence)
  // and found Redis in agreement, Redis alone answers again.
  await within(15_000, 'redis trusted again', async () => service.logLines(/redis agrees with mongodb again/).length > 0, 100);
  expect(await redis.hexists(keys.winners, 'lost-2')).toBe(1);
  await expectNoOversellNoDoubleNothingLost(mongo.models, couponId, 3, [...answers, again, late]);
});

test('a raise Redis lost in a failover: a claim that Redis answers SOLD_OUT gets a unit MongoDB still has free', async () => {
  // Only the claim's own check can repair: no scheduled pass comes in time.
  await withoutScheduledRepairs(async (env, direct) => {
    const admin = await adminToken();
    const couponId = await createCoupon(env.service.url, admin, { name: 'lost raise', totalQuantity: 2 });
    const first = [await claimAs(env.service.url, couponId, 'raise-0', await userToken('raise-0')), await claimAs(env.service.url, couponId, 'raise-1', await userToken('raise-1'))];
    expect(first.map((a) => a.status)).toEqual(['ISSUED', 'ISSUED']);
    const keys = couponKeys(couponId);
    const [total, rev] = await direct.hmget(keys.meta, 'total', 'rev');
    const raised = await gql(env.service.url, 'mutation U($id: ID!, $input: UpdateCouponInput!) { updateCoupon(id: $id, input: $input) { totalQuantity remaining } }', { id: couponId, input: { totalQuantity: 4 } }, admin);
    expect(raised.data?.updateCoupon).toEqual({ totalQuantity: 4, remaining: 2 });

    // The promoted replica never heard the raise; the service's connections drop and come back.
    await direct.hset(keys.meta, 'total', total!, 'rev', rev!);
    await direct.call('CLIENT', 'KILL', 'TYPE', 'normal').catch(() => undefined);
    await within(5_000, 'the service noticed', async () => env.service.logLines(/may have lost acknowledged writes/).length > 0, 50);

    const late = await claimAs(env.service.url, couponId, 'raise-late', await userToken('raise-late'));
    expect(late).toMatchObject({ status: 'ISSUED', remaining: 1 });
    await expectNoOversellNoDoubleNothingLost(env.mongo.models, couponId, 4, [...first, late]);
  });
});

test('a cancel Redis lost in a failover: an operator\'s change answers the stock MongoDB holds, not the older one in Redis', async () => {
  // No scheduled pass comes in time: the reconciler cannot repair Redis before the update answers.
  await withoutScheduledRepairs(async (env, direct) => {
    const admin = await adminToken();
    const couponId = await createCoupon(env.service.url, admin, { name: 'lost cancel', totalQuantity: 3 });
    const wins = [await claimAs(env.service.url, couponId, 'cancel-0', await userToken('cancel-0')), await claimAs(env.service.url, couponId, 'cancel-1', await userToken('cancel-1'))];
    expect(wins.map((a) => a.status)).toEqual(['ISSUED', 'ISSUED']);
    const keys = Object.values(couponKeys(couponId));
    await within(5_000, 'no reservation pending', async () => (await direct.zcard(couponKeys(couponId).pending)) === 0);

    // The replica's copy: the claim state before the cancel's Redis step.
    const replica = await Promise.all(keys.map((key) => direct.dumpBuffer(key)));
    expect(await cancelAs(env.service.url, wins[0]!.issuance!.id, await userToken('cancel-0'))).toMatchObject({ status: 'CANCELLED' });
    // The promoted replica replaces the master; the service's connections drop and come back.
    for (const [i, key] of keys.entries()) {
      const dumped = replica[i];
      if (dumped) await direct.restore(key, 0, dumped, 'REPLACE');
      else await direct.del(key);
    }
    await direct.call('CLIENT', 'KILL', 'TYPE', 'normal').catch(() => undefined);
    await within(5_000, 'the service noticed', async () => env.service.logLines(/may have lost acknowledged writes/).length > 0, 50);

    const renamed = await gql(env.service.url, 'mutation U($id: ID!, $input: UpdateCouponInput!) { updateCoupon(id: $id, input: $input) { totalQuantity remaining status } }', { id: couponId, input: { name: 'renamed' } }, admin);
    expect(renamed.data?.updateCoupon).toEqual({ totalQuantity: 3, remaining: 2, status: 'ACTIVE' });
    const ended = await gql(env.service.url, 'mutation E($id: ID!) { endCoupon(id: $id) { remaining status } }', { id: couponId }, admin);
    expect(ended.data?.endCoupon).toEqual({ remaining: 2, status: 'ENDED' });
  });
});

test('a win whose confirmation Redis lost in a failover: the winner\'s next claim shows the issuance as MongoDB holds it, redeemed since', async () => {
  const couponId = await createCoupon(service.url, await adminToken(), { name: 'lost confirmation', totalQuantity: 2 });
  const token = await userToken('confirm-0');
  const won = await claimAs(service.url, couponId, 'confirm-0', token);
  expect(won.status).toBe('ISSUED');
  const keys = couponKeys(couponId);
  await within(5_000, 'no reservation pending', async () => (await redis.zcard(keys.pending)) === 0);
  expect(await redeemAs(service.url, won.issuance!.id, 'order-lost-1', token)).toMatchObject({ status: 'REDEEMED' });

  // The promoted replica had the win but not its confirmation: the entry reads "being written".
  const issuance = won.issuance!;
  await redis.hset(keys.winners, 'confirm-0', encodeWinner({ sequence: issuance.sequence, issuedAtMs: Date.parse(issuance.issuedAt), issuanceId: issuance.id, durable: false }));
  await redis.zadd(keys.pending, Date.now(), 'confirm-0');

  const reply = await gql(service.url, 'mutation C($c: ID!) { claimCoupon(couponId: $c) { status issuance { id status orderId } } }', { c: couponId }, token);
  expect(reply.data?.claimCoupon).toEqual({ status: 'ALREADY_ISSUED', issuance: { id: issuance.id, status: 'REDEEMED', orderId: 'order-lost-1' } });
});
