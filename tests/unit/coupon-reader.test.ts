import { Types } from 'mongoose';
import type { Models } from '../../src/mongo/models';
import type { CouponCatalog } from '../../src/coupons/coupon-catalog';
import type { IssuanceRecord } from '../../src/coupons/coupon-model';
import { CouponReader } from '../../src/live/coupon-reader';

const issuanceId = new Types.ObjectId();
const couponId = new Types.ObjectId();
const stored = (status: string, orderId?: string) => ({ _id: issuanceId, couponId, userId: 'ann', sequence: 1, issuedAt: new Date(1000), status, orderId, redeemedAt: orderId ? new Date(2000) : undefined });

/** A reader over an Issuance collection whose findById answers `next()` each time. */
function readerWith(next: () => Promise<unknown>) {
  const models = { Issuance: { findById: () => ({ lean: () => next() }) } } as unknown as Models;
  return new CouponReader({} as CouponCatalog, { stock: async () => ({ loaded: true, total: 1, remaining: 0, epoch: 1, version: 1 }) }, models);
}

/** The one object the sold-out memory hands to every claim of this winner. */
const fromMemory: IssuanceRecord = { id: issuanceId.toHexString(), couponId: couponId.toHexString(), userId: 'ann', sequence: 1, issuedAt: new Date(1000), status: 'ACTIVE', lifecycleUnknown: true } as IssuanceRecord;

describe('an issuance built from the claim state is read from MongoDB per request', () => {
  test('a redeem between two requests shows in the second, though both answer the same issuance object', async () => {
    let doc = stored('ACTIVE');
    const reader = readerWith(async () => doc);
    const first = {};
    expect(await reader.lifecycle(fromMemory, first)).toMatchObject({ status: 'ACTIVE' });
    doc = stored('REDEEMED', 'order-1');
    // Within one request: one read however many fields ask.
    expect(await reader.lifecycle(fromMemory, first)).toMatchObject({ status: 'ACTIVE' });
    expect(await reader.lifecycle(fromMemory, {})).toMatchObject({ status: 'REDEEMED', orderId: 'order-1' });
  });

  test('a failed read is not kept: the next field asks MongoDB again', async () => {
    let fail = true;
    const reader = readerWith(async () => {
      if (fail) throw new Error('MongoDB unreachable');
      return stored('ACTIVE');
    });
    const request = {};
    await expect(reader.lifecycle(fromMemory, request)).rejects.toThrow('MongoDB unreachable');
    fail = false;
    expect(await reader.lifecycle(fromMemory, request)).toMatchObject({ status: 'ACTIVE' });
  });
});
