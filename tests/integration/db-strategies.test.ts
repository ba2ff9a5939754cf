/**
 * CLAIM_STRATEGY=db-lock and db-atomic (load comparison only): the same claimCoupon contract
 * decided by a MongoDB counter instead of the Redis gate, behind a lock held across the claim's
 * round trips or with one conditional update. Same outcomes, same guarantees; only speed differs.
 */
import { Types } from 'mongoose';
import { DbAtomicClaims, type DbCounterClaims } from '../../src/claims/strategies/db-atomic-claims';
import { DbLockClaims } from '../../src/claims/strategies/db-lock-claims';
import { CLAIM, COUPON, createCoupon, gql } from '../support/graphql';
import { adminToken, useTestService, userToken } from '../support/stack';

describe.each([
  ['db-lock', DbLockClaims],
  ['db-atomic', DbAtomicClaims],
] as const)('%s claim strategy', (strategyName, StrategyClass) => {
  let admin: string;
  // Repairs are driven by hand below; the start-up pass finds nothing to do.
  const suite = useTestService({ CLAIM_STRATEGY: strategyName, RECONCILE_INTERVAL_MS: '3600000', REQUEST_TIMEOUT_MS: '1000' });

  beforeAll(async () => {
    admin = await adminToken();
  });

  const claim = async (couponId: string, user: string) => gql(suite.service.url, CLAIM, { couponId }, await userToken(user));
  const couponCounter = async (couponId: string) =>
    suite.service.models.Coupon.collection.findOne({ _id: new Types.ObjectId(couponId) }, { projection: { issuedCount: 1, stockVersion: 1 } });

  test(`the service decides claims with the ${strategyName} strategy when CLAIM_STRATEGY=${strategyName}`, () => {
    expect(suite.service.services.claims).toBeInstanceOf(StrategyClass);
  });

  test('a first claim is ISSUED with sequence 1, and the coupon shows one fewer remaining', async () => {
    const couponId = await createCoupon(suite.service.url, admin, { name: 'Locked first', totalQuantity: 3 });
    const reply = await claim(couponId, 'alice');
    expect(reply.errors).toBeUndefined();
    expect(reply.data!.claimCoupon).toMatchObject({ status: 'ISSUED', remaining: 2, issuance: { couponId, userId: 'alice', sequence: 1 } });
    const coupon = await gql(suite.service.url, COUPON, { id: couponId });
    expect(coupon.data!.coupon).toMatchObject({ remaining: 2, issuedCount: 1, status: 'ACTIVE' });
    expect(await suite.service.models.Issuance.countDocuments({ couponId: new Types.ObjectId(couponId) })).toBe(1);
  });

  test('a user who already won gets ALREADY_ISSUED with the same issuance back, and stock does not move', async () => {
    const couponId = await createCoupon(suite.service.url, admin, { name: 'Locked twice', totalQuantity: 5 });
    const first = await claim(couponId, 'bob');
    const second = await claim(couponId, 'bob');
    expect(first.data!.claimCoupon.status).toBe('ISSUED');
    expect(second.data!.claimCoupon).toEqual({ status: 'ALREADY_ISSUED', remaining: 4, issuance: first.data!.claimCoupon.issuance });
  });

  test('when the stock is gone the next user gets SOLD_OUT and the coupon says SOLD_OUT', async () => {
    const couponId = await createCoupon(suite.service.url, admin, { name: 'Locked single', totalQuantity: 1 });
    expect((await claim(couponId, 'winner')).data!.claimCoupon.status).toBe('ISSUED');
    expect((await claim(couponId, 'late')).data!.claimCoupon).toEqual({ status: 'SOLD_OUT', remaining: 0, issuance: null });
    expect((await gql(suite.service.url, COUPON, { id: couponId })).data!.coupon).toMatchObject({ status: 'SOLD_OUT', remaining: 0 });
  });

  test('a coupon that has not started answers NOT_STARTED and takes no stock', async () => {
    const startsAt = new Date(Date.now() + 3600_000).toISOString();
    const couponId = await createCoupon(suite.service.url, admin, { name: 'Locked later', totalQuantity: 10, startsAt });
    expect((await claim(couponId, 'early')).data!.claimCoupon).toEqual({ status: 'NOT_STARTED', remaining: 10, issuance: null });
    expect((await gql(suite.service.url, COUPON, { id: couponId })).data!.coupon).toMatchObject({ status: 'SCHEDULED', remaining: 10 });
  });

  test('a coupon whose end has passed answers ENDED', async () => {
    const startsAt = new Date(Date.now() - 1000).toISOString();
    const endsAt = new Date(Date.now() + 300).toISOString();
    const couponId = await createCoupon(suite.service.url, admin, { name: 'Locked brief', totalQuantity: 10, startsAt, endsAt });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await claim(couponId, 'slow')).data!.claimCoupon).toEqual({ status: 'ENDED', remaining: 10, issuance: null });
  });

  test('an unknown coupon is NOT_FOUND', async () => {
    const reply = await claim(new Types.ObjectId().toHexString(), 'lost');
    expect(reply.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  test('a concurrent mini-drop issues exactly the stock, once per user, with sequences 1..stock', async () => {
    const stock = 15;
    const couponId = await createCoupon(suite.service.url, admin, { name: 'Locked drop', totalQuantity: stock });
    // 60 distinct users, and 10 of them press twice at the same moment.
    const users = Array.from({ length: 60 }, (_, i) => `drop-${i}`);
    const replies = await Promise.all([...users, ...users.slice(0, 10)].map((user) => claim(couponId, user)));
    expect(replies.flatMap((r) => r.errors ?? [])).toEqual([]);
    const statuses = replies.map((r) => r.data!.claimCoupon.status as string);
    expect(statuses.filter((s) => s === 'ISSUED')).toHaveLength(stock);
    expect(statuses.every((s) => ['ISSUED', 'ALREADY_ISSUED', 'SOLD_OUT'].includes(s))).toBe(true);

    const stored = await suite.service.models.Issuance.find({ couponId: new Types.ObjectId(couponId) }).lean();
    expect(stored).toHaveLength(stock);
    expect(new Set(stored.map((i) => i.userId)).size).toBe(stock);
    expect(stored.map((i) => i.sequence).sort((a, b) => a - b)).toEqual(Array.from({ length: stock }, (_, i) => i + 1));
    expect((await couponCounter(couponId))?.issuedCount).toBe(stock);
    expect((await gql(suite.service.url, COUPON, { id: couponId })).data!.coupon).toMatchObject({ remaining: 0, issuedCount: stock, status: 'SOLD_OUT' });
  });

  test('one user pressing many times at once holds one issuance and every reply names it', async () => {
    const couponId = await createCoupon(suite.service.url, admin, { name: 'Locked eager', totalQuantity: 10 });
    const token = await userToken('eager');
    const replies = await Promise.all(Array.from({ length: 8 }, () => gql(suite.service.url, CLAIM, { couponId }, token)));
    const issuances = new Set(replies.map((r) => r.data!.claimCoupon.issuance.id));
    expect(issuances.size).toBe(1);
    expect(replies.filter((r) => r.data!.claimCoupon.status === 'ISSUED')).toHaveLength(1);
    expect(await suite.service.models.Issuance.countDocuments({ couponId: new Types.ObjectId(couponId) })).toBe(1);
    // Units taken by the losing presses went back.
    expect((await gql(suite.service.url, COUPON, { id: couponId })).data!.coupon.remaining).toBe(9);
  });

  test('a counter left ahead of the issuances (a claim died between its writes) is set back after a quiet pass', async () => {
    const couponId = await createCoupon(suite.service.url, admin, { name: 'Locked crash', totalQuantity: 4 });
    await claim(couponId, 'survivor');
    // What a claim that took the counter and died before inserting its issuance leaves behind.
    await suite.service.models.Coupon.collection.updateOne({ _id: new Types.ObjectId(couponId) }, { $inc: { issuedCount: 1, stockVersion: 1 } });
    expect((await gql(suite.service.url, COUPON, { id: couponId })).data!.coupon.remaining).toBe(2);

    const strategy = suite.service.services.claims as DbCounterClaims;
    await strategy.repairOnce();
    expect((await gql(suite.service.url, COUPON, { id: couponId })).data!.coupon.remaining).toBe(2);
    await strategy.repairOnce();
    expect((await gql(suite.service.url, COUPON, { id: couponId })).data!.coupon).toMatchObject({ remaining: 3, issuedCount: 1 });
  });

  if (strategyName === 'db-lock') {
    test('a claim waits while another holds the coupon lock, and answers SERVICE_UNAVAILABLE when its deadline passes first', async () => {
      const couponId = await createCoupon(suite.service.url, admin, { name: 'Locked held', totalQuantity: 2 });
      const _id = new Types.ObjectId(couponId);
      // Another instance holds the lease for 1.5 s: longer than the 1 s claim deadline.
      await suite.service.models.Coupon.collection.updateOne({ _id }, { $set: { lockHolder: 'elsewhere', lockedUntil: new Date(Date.now() + 1500) } });
      const started = performance.now();
      const blocked = await claim(couponId, 'waiter');
      const waited = performance.now() - started;
      expect(blocked.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
      expect(waited).toBeGreaterThanOrEqual(900);
      expect(waited).toBeLessThan(3000);
      // Once the lease has lapsed (its holder died), the next claim takes the lock and wins.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1600 - waited)));
      expect((await claim(couponId, 'waiter')).data!.claimCoupon).toMatchObject({ status: 'ISSUED', remaining: 1 });
    });

    test('claimants of one coupon hold the lock one at a time: the holder releases it after each claim', async () => {
      const couponId = await createCoupon(suite.service.url, admin, { name: 'Locked turns', totalQuantity: 3 });
      const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => claim(couponId, `turn-${i}`)));
      expect(replies.map((r) => r.data!.claimCoupon.status).sort()).toEqual(['ISSUED', 'ISSUED', 'ISSUED', 'SOLD_OUT', 'SOLD_OUT', 'SOLD_OUT']);
      const doc = await suite.service.models.Coupon.collection.findOne({ _id: new Types.ObjectId(couponId) });
      expect(doc?.lockHolder).toBeUndefined();
      expect(doc?.lockedUntil).toBeUndefined();
    });
  }

  test('claims decided in MongoDB leave no coupon state in Redis', async () => {
    expect(await suite.service.redis.keys('coupon:*')).toEqual([]);
  });
});
