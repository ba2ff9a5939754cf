/**
 * Cancels racing claims, repeated cancels, the cancel/redeem rate limit and the CSV export's
 * concurrency limit (issue 19, items 6, 7 and 9). Exact interleavings are forced: one instance's
 * Redis step of a cancel (couponCancel) or the export's cursor is paused while the other side runs.
 */
import { Redis } from 'ioredis';
import { Types } from 'mongoose';
import { gql, createCoupon, errorCode, COUPON } from '../../support/graphql';
import { request } from '../../support/http';
import { adminToken, userToken, useTestServices } from '../../support/stack';
import { CANCEL, claimIssuance, dataOf, REDEEM } from '../../support/admin';
import { COUPON_CHANGED_CHANNEL } from '../../../src/coupons/coupon-changes';
import { LIVE } from '../../../src/mongo/models';
import type { RunningService } from '../../../src/service';

const suite = useTestServices(2);
let one: RunningService;
let two: RunningService;
let admin: string;

beforeAll(async () => {
  [one, two] = suite.services as [RunningService, RunningService];
  admin = await adminToken();
});

const restores: Array<() => void> = [];
afterEach(() => {
  while (restores.length) restores.pop()!();
});

function latch() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

const cancel = (service: RunningService, issuanceId: string, user: string) => gql(service.url, CANCEL, { issuanceId }, userToken(user));

describe("a claim racing its own cancel (item 7)", () => {
  test('a claim on another instance between the cancel\'s MongoDB and Redis steps never answers ALREADY_ISSUED with the cancelled issuance', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Claim vs own cancel', totalQuantity: 2 });
    const won = (await claimIssuance(one.url, couponId, userToken('cvc'))).issuance;
    // One's cancel has written MongoDB; its Redis step waits until two's claim has answered.
    const claimed = latch();
    const reached = latch();
    const originalCancel = one.redis.couponCancel;
    one.redis.couponCancel = (async (...args: any[]) => {
      one.redis.couponCancel = originalCancel;
      reached.open();
      await claimed.opened;
      return (one.redis.couponCancel as (...a: any[]) => Promise<number>)(...args);
    }) as typeof originalCancel;
    restores.push(() => {
      one.redis.couponCancel = originalCancel;
    });
    const cancelling = cancel(one, won.id, 'cvc');
    await reached.opened;
    const answer = await claimIssuance(two.url, couponId, userToken('cvc'));
    claimed.open();
    expect(dataOf(await cancelling).cancelIssuance.status).toBe('CANCELLED');

    // The unit came back and the user won it again, like anyone: a new, live issuance.
    expect(answer.status).toBe('ISSUED');
    expect(answer.issuance.id).not.toBe(won.id);
    expect(answer.issuance.status).toBe('ACTIVE');
    const live = await one.models.Issuance.find({ couponId: new Types.ObjectId(couponId), ...LIVE }).lean();
    expect(live.map((doc) => doc._id.toHexString())).toEqual([answer.issuance.id]);
    // The unit was returned once, not twice.
    expect(dataOf(await gql(one.url, COUPON, { id: couponId })).coupon.remaining).toBe(1);
    const again = await claimIssuance(two.url, couponId, userToken('cvc'));
    expect([again.status, again.issuance.id]).toEqual(['ALREADY_ISSUED', answer.issuance.id]);
  });
});

describe('repeated cancels (item 6)', () => {
  test('cancelling an already CANCELLED issuance again returns it unchanged and announces nothing', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Repeat cancel', totalQuantity: 3 });
    const won = (await claimIssuance(one.url, couponId, userToken('rpc'))).issuance;
    const listener = new Redis(suite.stack.redis.url);
    const heard: string[] = [];
    try {
      await listener.subscribe(COUPON_CHANGED_CHANNEL);
      listener.on('message', (_channel, message) => heard.push(message));
      const first = dataOf(await cancel(one, won.id, 'rpc')).cancelIssuance;
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(heard.length).toBeGreaterThanOrEqual(1);
      const afterFirst = heard.length;
      for (const service of [one, two, one]) {
        expect(dataOf(await cancel(service, won.id, 'rpc')).cancelIssuance).toEqual(first);
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(heard.length).toBe(afterFirst);
    } finally {
      listener.disconnect();
    }
  });
});

describe('cancel and redeem rate limit (item 6)', () => {
  test('one user sending a burst of cancels and redeems is held to LIFECYCLE_RATE_PER_USER per second (5) with RATE_LIMITED; others are not', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Lifecycle limit', totalQuantity: 3 });
    const won = (await claimIssuance(one.url, couponId, userToken('lim'))).issuance;
    const other = (await claimIssuance(one.url, couponId, userToken('lim-other'))).issuance;
    const burst = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? gql(one.url, REDEEM, { issuanceId: won.id, orderId: 'order-1' }, userToken('lim')) : cancel(two, won.id, 'lim'))),
    );
    const codes = burst.map((reply) => errorCode(reply) ?? 'OK');
    // A burst falls in at most two one-second windows: at most 10 pass.
    expect(codes.filter((code) => code === 'RATE_LIMITED').length).toBeGreaterThanOrEqual(2);
    expect(codes.every((code) => ['OK', 'RATE_LIMITED', 'ISSUANCE_NOT_ACTIVE'].includes(code))).toBe(true);
    expect(dataOf(await gql(one.url, REDEEM, { issuanceId: other.id, orderId: 'order-2' }, userToken('lim-other'))).redeemIssuance.status).toBe('REDEEMED');
  });
});

describe('CSV export limit (item 9)', () => {
  test('concurrent exports beyond the limit get 503 even while the first ones still await their cursor', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Export race', totalQuantity: 1 });
    const directory = one.services.directory;
    const original = directory.allIssuances.bind(directory);
    // Every cursor takes 300 ms to open: four requests all arrive while the first awaits it.
    directory.allIssuances = (async (...args: Parameters<typeof original>) => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      return original(...args);
    }) as typeof directory.allIssuances;
    restores.push(() => {
      directory.allIssuances = original;
    });
    const replies = await Promise.all(
      Array.from({ length: 4 }, () => request(`${one.url}/admin/coupons/${couponId}/issuances.csv`, { headers: { authorization: `Bearer ${admin}` } })),
    );
    expect(replies.map((reply) => reply.status).sort()).toEqual([200, 200, 503, 503]);
    // And the places are given back: one export now passes.
    restores.pop()!();
    expect((await request(`${one.url}/admin/coupons/${couponId}/issuances.csv`, { headers: { authorization: `Bearer ${admin}` } })).status).toBe(200);
  });
});
