import { Types } from 'mongoose';
import { gql, COUPON, createCoupon, errorCode, MY_ISSUANCES } from '../support/graphql';
import { adminToken, userToken, useTestServices } from '../support/stack';
import { CANCEL, claimIssuance, dataOf, REDEEM, UPDATE, END } from '../support/admin';
import type { RunningService } from '../../src/service';
import { watchStock, wsClient } from '../support/subscriptions';

// The races here send bursts from one user; the cancel/redeem rate limit has its own test (faults/lifecycle-races).
const suite = useTestServices(2, { LIFECYCLE_RATE_PER_USER: '100' });
let one: RunningService;
let two: RunningService;
let admin: string;

beforeAll(async () => {
  [one, two] = suite.services as [RunningService, RunningService];
  admin = await adminToken();
});

const remainingOn = async (url: string, id: string) => dataOf(await gql(url, COUPON, { id })).coupon.remaining as number;

describe('redeem', () => {
  test('the holder redeems an ACTIVE issuance once; the same orderId again returns it unchanged, another is ISSUANCE_NOT_ACTIVE', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Redeem', totalQuantity: 5 });
    const token = userToken('r-holder');
    const issuance = (await claimIssuance(one.url, couponId, token)).issuance;
    const first = dataOf(await gql(one.url, REDEEM, { issuanceId: issuance.id, orderId: 'order-1' }, token)).redeemIssuance;
    expect(first).toMatchObject({ id: issuance.id, status: 'REDEEMED', orderId: 'order-1', cancelledAt: null });
    expect(first.redeemedAt).not.toBeNull();
    const again = dataOf(await gql(two.url, REDEEM, { issuanceId: issuance.id, orderId: 'order-1' }, token)).redeemIssuance;
    expect(again).toEqual(first);
    expect(errorCode(await gql(one.url, REDEEM, { issuanceId: issuance.id, orderId: 'order-2' }, token))).toBe('ISSUANCE_NOT_ACTIVE');
    expect(errorCode(await gql(one.url, CANCEL, { issuanceId: issuance.id }, token))).toBe('ISSUANCE_NOT_ACTIVE');
    // The claim path's ALREADY_ISSUED shows what became of the issuance.
    expect((await claimIssuance(two.url, couponId, token)).issuance).toMatchObject({ id: issuance.id, status: 'REDEEMED', orderId: 'order-1' });
  });

  test('two redeems with different orders racing on two instances: exactly one order wins', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Race', totalQuantity: 5 });
    const token = userToken('r-racer');
    const issuance = (await claimIssuance(one.url, couponId, token)).issuance;
    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, i) => gql(i % 2 ? one.url : two.url, REDEEM, { issuanceId: issuance.id, orderId: `order-${i}` }, token)),
    );
    const won = replies.filter((r) => !r.errors);
    expect(won).toHaveLength(1);
    expect(replies.filter((r) => errorCode(r) === 'ISSUANCE_NOT_ACTIVE')).toHaveLength(9);
    const stored = await one.models.Issuance.findById(issuance.id).lean();
    expect(stored).toMatchObject({ status: 'REDEEMED', orderId: won[0]!.data!.redeemIssuance.orderId });
  });

  test("another user's issuance is NOT_FOUND, exactly as an unknown one; an admin may redeem it", async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Others', totalQuantity: 5 });
    const issuance = (await claimIssuance(one.url, couponId, userToken('r-owner'))).issuance;
    const stranger = userToken('r-stranger');
    const foreign = await gql(one.url, REDEEM, { issuanceId: issuance.id, orderId: 'x' }, stranger);
    const unknown = await gql(one.url, REDEEM, { issuanceId: new Types.ObjectId().toHexString(), orderId: 'x' }, stranger);
    expect(errorCode(foreign)).toBe('NOT_FOUND');
    expect(foreign.errors![0]!.message).toBe(unknown.errors![0]!.message);
    expect(errorCode(await gql(one.url, CANCEL, { issuanceId: issuance.id }, stranger))).toBe('NOT_FOUND');
    expect(errorCode(await gql(one.url, REDEEM, { issuanceId: issuance.id, orderId: 'x' }))).toBe('UNAUTHENTICATED');
    expect(dataOf(await gql(one.url, REDEEM, { issuanceId: issuance.id, orderId: 'desk' }, admin)).redeemIssuance.status).toBe('REDEEMED');
  });

  test("after the coupon's redeemBy, a redeem is ISSUANCE_EXPIRED", async () => {
    const startsAt = new Date(Date.now() - 60_000).toISOString();
    const couponId = await createCoupon(one.url, admin, { name: 'Expiring', totalQuantity: 5, startsAt, redeemBy: new Date(Date.now() + 60_000).toISOString() });
    const token = userToken('r-late');
    const issuance = (await claimIssuance(one.url, couponId, token)).issuance;
    dataOf(await gql(one.url, UPDATE, { id: couponId, input: { redeemBy: new Date(Date.now() - 1000).toISOString() } }, admin));
    expect(errorCode(await gql(two.url, REDEEM, { issuanceId: issuance.id, orderId: 'too-late' }, token))).toBe('ISSUANCE_EXPIRED');
  });
});

describe('cancel', () => {
  test('a cancelled unit returns to stock on every instance, and its user may claim again and gets a new issuance', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Cancel', totalQuantity: 2 });
    const alice = userToken('c-alice');
    const first = (await claimIssuance(one.url, couponId, alice)).issuance;
    await claimIssuance(one.url, couponId, userToken('c-bob'));
    expect(await remainingOn(two.url, couponId)).toBe(0);
    const cancelled = dataOf(await gql(two.url, CANCEL, { issuanceId: first.id }, alice)).cancelIssuance;
    expect(cancelled).toMatchObject({ id: first.id, status: 'CANCELLED' });
    expect(cancelled.cancelledAt).not.toBeNull();
    expect(await remainingOn(one.url, couponId)).toBe(1);
    // Idempotent: the same issuance again, unchanged, and the unit is not returned twice.
    expect(dataOf(await gql(one.url, CANCEL, { issuanceId: first.id }, alice)).cancelIssuance).toEqual(cancelled);
    expect(await remainingOn(one.url, couponId)).toBe(1);
    const again = await claimIssuance(one.url, couponId, alice);
    expect(again).toMatchObject({ status: 'ISSUED', remaining: 0, issuance: { sequence: first.sequence, status: 'ACTIVE' } });
    expect(again.issuance.id).not.toBe(first.id);
    const mine = dataOf(await gql(one.url, MY_ISSUANCES.replace('sequence issuedAt', 'sequence issuedAt status'), {}, alice)).myIssuances;
    expect(mine.map((i: { status: string }) => i.status).sort()).toEqual(['ACTIVE', 'CANCELLED']);
  });

  test('a sold-out coupon answered from memory on another instance is claimable again within 1 s of a cancel', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Memory', totalQuantity: 1 });
    const winner = userToken('m-winner');
    const issuance = (await claimIssuance(one.url, couponId, winner)).issuance;
    // Both instances learn the coupon is sold out (the memory loads on a SOLD_OUT answer).
    for (let i = 0; i < 5; i++) {
      await claimIssuance(one.url, couponId, userToken(`m-late-${i}`));
      await claimIssuance(two.url, couponId, userToken(`m-late-${i}`));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    dataOf(await gql(one.url, CANCEL, { issuanceId: issuance.id }, winner));
    const cancelledAt = performance.now();
    let answer: Record<string, any> | undefined;
    while (performance.now() - cancelledAt < 1000) {
      answer = await claimIssuance(two.url, couponId, userToken('m-next'));
      if (answer.status === 'ISSUED') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(answer!.status).toBe('ISSUED');
    // The cancelled winner is not remembered as a winner anywhere.
    expect((await claimIssuance(one.url, couponId, winner)).status).toBe('SOLD_OUT');
  });

  test('watchers on another instance see the returned unit within 1 s, and a raised totalQuantity too', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Watched', totalQuantity: 2 });
    const issued = [];
    for (const user of ['w-1', 'w-2']) issued.push((await claimIssuance(one.url, couponId, userToken(user))).issuance);
    const client = wsClient(two.url);
    try {
      const watcher = watchStock(client, couponId);
      await watcher.until((e) => e.remaining === 0 && e.status === 'SOLD_OUT');
      dataOf(await gql(one.url, CANCEL, { issuanceId: issued[0].id }, userToken('w-1')));
      const cancelledAt = performance.now();
      await watcher.until((e) => e.remaining === 1 && e.status === 'ACTIVE', 1000);
      const seenMs = performance.now() - cancelledAt;
      dataOf(await gql(one.url, UPDATE, { id: couponId, input: { totalQuantity: 5 } }, admin));
      await watcher.until((e) => e.remaining === 4 && e.totalQuantity === 5, 1000);
      console.log(`a cancelled unit reached a watcher on another instance after ${seenMs.toFixed(0)} ms`);
    } finally {
      await client.dispose();
    }
  });

  test('a returned unit is won by exactly one of the claimers racing for it on two instances', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Contested', totalQuantity: 3 });
    const holders = ['k-1', 'k-2', 'k-3'];
    const issued = await Promise.all(holders.map((user) => claimIssuance(one.url, couponId, userToken(user))));
    dataOf(await gql(one.url, CANCEL, { issuanceId: issued[1]!.issuance.id }, admin));
    const racers = Array.from({ length: 30 }, (_, i) => `k-racer-${i}`);
    const answers = await Promise.all(racers.map((user, i) => claimIssuance(i % 2 ? one.url : two.url, couponId, userToken(user))));
    expect(answers.filter((a) => a.status === 'ISSUED')).toHaveLength(1);
    expect(answers.filter((a) => a.status === 'SOLD_OUT')).toHaveLength(29);
    const live = await one.models.Issuance.find({ couponId: new Types.ObjectId(couponId), status: { $ne: 'CANCELLED' } }).lean();
    expect(live).toHaveLength(3);
    expect(new Set(live.map((doc) => doc.sequence)).size).toBe(3);
  });

  test('a cancel on an ENDED coupon takes the issuance out; nobody can claim the unit', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Over', totalQuantity: 2 });
    const token = userToken('e-holder');
    const issuance = (await claimIssuance(one.url, couponId, token)).issuance;
    dataOf(await gql(one.url, END, { id: couponId }, admin));
    expect(dataOf(await gql(two.url, CANCEL, { issuanceId: issuance.id }, token)).cancelIssuance.status).toBe('CANCELLED');
    expect((await claimIssuance(two.url, couponId, token)).status).toBe('ENDED');
    expect((await claimIssuance(one.url, couponId, userToken('e-other'))).status).toBe('ENDED');
  });
});
