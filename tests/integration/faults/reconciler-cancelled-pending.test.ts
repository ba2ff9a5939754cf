/**
 * Fault: a winner's write landed but its confirmation did not reach Redis, and the issuance was
 * then cancelled while Redis was away (MongoDB: CANCELLED; Redis: still a pending reservation).
 * Settling it must not re-insert it (its _id is taken, and the user gave it up): it is dropped as
 * the cancel would have dropped it, its unit goes back to stock, and the user's claims work. And one
 * coupon that cannot be settled must never keep the pass from settling and repairing the others.
 *
 * The interleaving (write, lost confirmation, cancel during an outage) is set up directly in the
 * stores, exactly as it leaves them, rather than timed; the reconciler pass is then run by hand.
 */
import { Types } from 'mongoose';
import { claimArgs, couponKeys, encodeWinner } from '../../../src/redis/scripts';
import type { RunningService } from '../../../src/service';
import { CLAIM, createCoupon, gql } from '../../support/graphql';
import { adminToken, startStack, startTestService, userToken, type Stack } from '../../support/stack';

let stack: Stack;
let service: RunningService;

beforeAll(async () => {
  stack = await startStack();
  // Passes run by the test only (the start-up pass aside).
  service = await startTestService(stack, { RECONCILE_INTERVAL_MS: '600000' });
});

afterAll(async () => {
  await service?.stop();
  await stack?.stop();
});

const claim = async (couponId: string, user: string) => {
  const reply = await gql(service.url, CLAIM, { couponId }, userToken(user));
  return reply.data?.claimCoupon ?? { code: reply.errors?.[0]?.extensions?.code };
};
const LONG_AGO = Date.now() - 60_000;

test('a pending winner whose issuance was cancelled while Redis was away is dropped like a cancel, and the pass still settles the other coupons', async () => {
  const token = adminToken();
  // Coupon A: "gone" won, the write landed, the confirmation was lost, then the issuance was cancelled in MongoDB only.
  const couponA = await createCoupon(service.url, token, { name: 'Cancelled while away', totalQuantity: 3 });
  const won = await claim(couponA, 'gone');
  expect(won.status).toBe('ISSUED');
  const keysA = couponKeys(couponA);
  await service.redis.hset(keysA.winners, 'gone', encodeWinner({ sequence: won.issuance.sequence, issuedAtMs: Date.parse(won.issuance.issuedAt), issuanceId: won.issuance.id }));
  await service.redis.zadd(keysA.pending, LONG_AGO, 'gone');
  const issuanceId = new Types.ObjectId(won.issuance.id);
  await service.models.Issuance.updateOne({ _id: issuanceId }, { $set: { status: 'CANCELLED', cancelKey: issuanceId, cancelledAt: new Date() } });

  // Coupon B, listed after A: a reservation whose write never happened (the instance died).
  const couponB = await createCoupon(service.url, token, { name: 'Stranded', totalQuantity: 3 });
  await claim(couponB, 'warm-up'); // loads B's state
  const keysB = couponKeys(couponB);
  const strandedId = new Types.ObjectId().toHexString();
  await service.redis.couponClaim(...claimArgs(keysB, 'stranded', strandedId));
  await service.redis.zadd(keysB.pending, LONG_AGO, 'stranded');

  const failedCoupons = await service.reconciler.runOnce();

  // A: nothing pending, no winner entry, the unit back, no second copy of the cancelled issuance.
  expect(await service.redis.zcard(keysA.pending)).toBe(0);
  expect(await service.redis.hget(keysA.winners, 'gone')).toBeNull();
  const stockA = await gql(service.url, `query($id: ID!) { coupon(id: $id) { remaining issuedCount } }`, { id: couponA });
  expect(stockA.data?.coupon).toEqual({ remaining: 3, issuedCount: 0 });
  expect(await service.models.Issuance.findById(issuanceId).lean()).toMatchObject({ status: 'CANCELLED' });
  // B: settled in the same pass.
  expect(await service.models.Issuance.findById(new Types.ObjectId(strandedId)).lean()).toMatchObject({ userId: 'stranded', status: 'ACTIVE' });
  expect(await service.redis.zcard(keysB.pending)).toBe(0);
  expect(failedCoupons).toBe(0);

  // The user may claim again, like anyone, and wins a new issuance.
  const again = await claim(couponA, 'gone');
  expect(again.status).toBe('ISSUED');
  expect(again.issuance.id).not.toBe(won.issuance.id);
  expect(await service.models.Issuance.countDocuments({ couponId: new Types.ObjectId(couponA), userId: 'gone', cancelKey: null })).toBe(1);
});

test('the user\'s own claim settles such a winner too: no INTERNAL_SERVER_ERROR, a new win', async () => {
  const couponId = await createCoupon(service.url, adminToken(), { name: 'Claimed before the pass', totalQuantity: 2 });
  const won = await claim(couponId, 'back');
  const keys = couponKeys(couponId);
  await service.redis.hset(keys.winners, 'back', encodeWinner({ sequence: won.issuance.sequence, issuedAtMs: Date.parse(won.issuance.issuedAt), issuanceId: won.issuance.id }));
  await service.redis.zadd(keys.pending, Date.now(), 'back');
  const issuanceId = new Types.ObjectId(won.issuance.id);
  await service.models.Issuance.updateOne({ _id: issuanceId }, { $set: { status: 'CANCELLED', cancelKey: issuanceId, cancelledAt: new Date() } });

  const again = await claim(couponId, 'back');
  expect(again).toMatchObject({ status: 'ISSUED', remaining: 1 });
  expect(again.issuance.id).not.toBe(won.issuance.id);
});

test('a coupon whose pass fails is logged and counted, and the coupons after it are still reconciled', async () => {
  const token = adminToken();
  const broken = await createCoupon(service.url, token, { name: 'Unreadable', totalQuantity: 2 });
  await claim(broken, 'someone');
  // A winner entry no script can read: settling it throws, every pass, until someone repairs it.
  await service.redis.hset(couponKeys(broken).winners, 'garbled', 'not-an-entry');
  await service.redis.zadd(couponKeys(broken).pending, LONG_AGO, 'garbled');
  const later = await createCoupon(service.url, token, { name: 'After the unreadable one', totalQuantity: 2 });
  await claim(later, 'warm-up');
  const strandedId = new Types.ObjectId().toHexString();
  await service.redis.couponClaim(...claimArgs(couponKeys(later), 'stranded-2', strandedId));
  await service.redis.zadd(couponKeys(later).pending, LONG_AGO, 'stranded-2');

  const failed = await service.reconciler.runOnce();
  expect(failed).toBe(1);
  expect((await service.metrics.reconcileCouponFailures.get()).values).toEqual(expect.arrayContaining([expect.objectContaining({ labels: { step: 'pending' }, value: 1 })]));
  expect(await service.models.Issuance.findById(new Types.ObjectId(strandedId)).lean()).toMatchObject({ userId: 'stranded-2' });
});
