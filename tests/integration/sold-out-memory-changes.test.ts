/**
 * The sold-out memory notices changes it was not told of. Two instances on one stack: the first
 * remembers a sold-out coupon; then a unit is returned and won again by someone else without the
 * coupon-changed message reaching it (a subscriber reconnecting, Redis down at the moment of the
 * announcement). `remaining` is 0 again by then, so only the stock position shows the change.
 *
 * The interleaving is forced rather than timed: the cancel's Redis step and the next win run in one
 * MULTI, so no reader (the memory's 500 ms check included) can ever see the unit free in between.
 */
import { Types } from 'mongoose';
import { cancelArgs, claimArgs, confirmArgs, couponKeys } from '../../src/redis/scripts';
import { CLAIM, createCoupon, gql } from '../support/graphql';
import { adminToken, useTestServices, userToken } from '../support/stack';

const suite = useTestServices(2);

const claimVia = async (index: number, couponId: string, user: string) => {
  const reply = await gql(suite.services[index]!.url, CLAIM, { couponId }, userToken(user));
  return reply.data?.claimCoupon ?? { code: reply.errors?.[0]?.extensions?.code };
};
const fromMemory = async (index: number) => (await suite.services[index]!.metrics.claimsFromMemory.get()).values[0]?.value ?? 0;

test('a unit returned and won again while the first instance missed the announcement: within 1 s it answers the new winner ALREADY_ISSUED and the cancelled one SOLD_OUT', async () => {
  const [first] = suite.services;
  const couponId = await createCoupon(first!.url, adminToken(), { name: 'Missed change', totalQuantity: 2 });
  const w1 = await claimVia(0, couponId, 'w1');
  const w2 = await claimVia(0, couponId, 'w2');
  expect([w1.status, w2.status]).toEqual(['ISSUED', 'ISSUED']);
  const learnedFrom = await fromMemory(0);
  for (let i = 0; (await fromMemory(0)) === learnedFrom && i < 100; i++) {
    expect((await claimVia(0, couponId, `late-${i}`)).status).toBe('SOLD_OUT');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(await fromMemory(0)).toBeGreaterThan(learnedFrom);

  // w1's issuance is cancelled (MongoDB first, as the lifecycle does), and "newcomer" wins the unit
  // at once: the Redis steps in one MULTI, and nobody announces anything.
  const cancelledId = new Types.ObjectId(w1.issuance.id);
  await first!.models.Issuance.updateOne({ _id: cancelledId }, { $set: { status: 'CANCELLED', cancelKey: cancelledId, cancelledAt: new Date() } });
  const keys = couponKeys(couponId);
  const newcomerId = new Types.ObjectId();
  const results = await first!.redis
    .multi()
    .couponCancel(...cancelArgs(keys, 'w1', w1.issuance.id, w1.issuance.sequence))
    .couponClaim(...claimArgs(keys, 'newcomer', newcomerId.toHexString()))
    .exec();
  const won = results![1]![1] as unknown[];
  expect(won[0]).toBe('ISSUED');
  await first!.models.Issuance.create({ _id: newcomerId, couponId: new Types.ObjectId(couponId), userId: 'newcomer', sequence: won[3] as number, issuedAt: new Date(won[4] as number), status: 'ACTIVE' });
  await first!.redis.couponConfirm(...confirmArgs(keys, [{ userId: 'newcomer', issuanceId: newcomerId.toHexString() }]));

  // The contract allows 1 s for a stock change to be seen; then the answers must be true.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  expect(await claimVia(0, couponId, 'newcomer')).toMatchObject({ status: 'ALREADY_ISSUED', issuance: { id: newcomerId.toHexString() } });
  expect(await claimVia(0, couponId, 'w1')).toMatchObject({ status: 'SOLD_OUT', issuance: null });
  expect(await claimVia(0, couponId, 'w2')).toMatchObject({ status: 'ALREADY_ISSUED', issuance: { id: w2.issuance.id } });
  // And still from memory, learned again by itself at the new position.
  const before = await fromMemory(0);
  expect((await claimVia(0, couponId, 'later')).status).toBe('SOLD_OUT');
  expect(await fromMemory(0)).toBe(before + 1);
});

test('a cancel whose Redis step never happened is noticed from MongoDB: the memory stops answering for its coupon within about a second', async () => {
  const [first] = suite.services;
  const couponId = await createCoupon(first!.url, adminToken(), { name: 'Cancel Redis never heard', totalQuantity: 1 });
  const only = await claimVia(0, couponId, 'only');
  const learnedFrom = await fromMemory(0);
  for (let i = 0; (await fromMemory(0)) === learnedFrom && i < 100; i++) {
    await claimVia(0, couponId, `late-${i}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(await fromMemory(0)).toBeGreaterThan(learnedFrom);
  const id = new Types.ObjectId(only.issuance.id);
  await first!.models.Issuance.updateOne({ _id: id }, { $set: { status: 'CANCELLED', cancelKey: id, cancelledAt: new Date() } });
  // Claims keep coming (which used to keep the entry alive for ever).
  const until = Date.now() + 1600;
  while (Date.now() < until) {
    await claimVia(0, couponId, 'busy');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const before = await fromMemory(0);
  await claimVia(0, couponId, 'busy');
  expect(await fromMemory(0)).toBe(before);
});

test('a winner whose issuance was just cancelled, asking the instance that remembers the sell-out before it hears of the cancel, is never told ALREADY_ISSUED: the unit is claimed anew', async () => {
  const [first] = suite.services;
  const couponId = await createCoupon(first!.url, adminToken(), { name: 'Cancelled holder asks', totalQuantity: 2 });
  const holder = await claimVia(0, couponId, 'holder');
  expect((await claimVia(0, couponId, 'other')).status).toBe('ISSUED');
  const learnedFrom = await fromMemory(0);
  for (let i = 0; (await fromMemory(0)) === learnedFrom && i < 100; i++) {
    expect((await claimVia(0, couponId, `late-${i}`)).status).toBe('SOLD_OUT');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // The cancel's first step, MongoDB, and nothing else yet: no Redis step, no announcement. The
  // memory, checked every 500 ms and against MongoDB's count every second, has not caught up.
  const cancelledId = new Types.ObjectId(holder.issuance.id);
  await first!.models.Issuance.updateOne({ _id: cancelledId }, { $set: { status: 'CANCELLED', cancelKey: cancelledId, cancelledAt: new Date() } });
  const asked = await claimVia(0, couponId, 'holder');
  expect(asked.status).toBe('ISSUED');
  expect(asked.issuance.id).not.toBe(holder.issuance.id);
  const stored = await first!.models.Issuance.findById(asked.issuance.id).lean();
  expect(stored?.status).toBe('ACTIVE');
});
