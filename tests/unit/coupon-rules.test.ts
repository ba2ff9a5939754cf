import { GraphQLError } from 'graphql';
import { assertCouponId, validateCreateCoupon } from '../../src/coupons/coupon-catalog';
import { couponStatus, isNewerStock } from '../../src/coupons/coupon-model';
import { parseDateTime } from '../../src/resolvers/DateTime';

const now = new Date('2026-11-25T12:00:00Z');
const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return (error as GraphQLError).extensions?.code;
  }
  return undefined;
};

describe('creating a coupon', () => {
  test('trims the name and defaults startsAt to now', () => {
    expect(validateCreateCoupon({ name: '  Sale ', totalQuantity: 10 }, now)).toEqual({ name: 'Sale', totalQuantity: 10, startsAt: now, endsAt: null, redeemBy: null });
  });

  test.each([
    { name: '', totalQuantity: 1 },
    { name: 'x'.repeat(201), totalQuantity: 1 },
    { name: 'ok', totalQuantity: 0 },
    { name: 'ok', totalQuantity: 1.5 },
    { name: 'ok', totalQuantity: 10_000_001 },
    { name: 'ok', totalQuantity: 1, startsAt: now, endsAt: now },
  ])('rejects %j as BAD_USER_INPUT', (input) => {
    expect(codeOf(() => validateCreateCoupon(input, now))).toBe('BAD_USER_INPUT');
  });

  test('accepts the edges of the ranges', () => {
    expect(() => validateCreateCoupon({ name: 'x'.repeat(200), totalQuantity: 10_000_000 }, now)).not.toThrow();
    expect(() => validateCreateCoupon({ name: 'x', totalQuantity: 1 }, now)).not.toThrow();
  });
});

describe('coupon ids', () => {
  test('only 24 hex digits are coupon ids', () => {
    expect(codeOf(() => assertCouponId('0123456789abcdef01234567'))).toBeUndefined();
    for (const bad of ['', 'abc', '0123456789abcdef0123456g', '0123456789abcdef012345678', '{"$gt":""}']) {
      expect(codeOf(() => assertCouponId(bad))).toBe('BAD_USER_INPUT');
    }
  });
});

describe('coupon status', () => {
  const open = { startsAt: new Date('2026-11-25T11:00:00Z'), endsAt: new Date('2026-11-25T13:00:00Z') };
  test('is SCHEDULED before the start, ENDED after the end, SOLD_OUT without stock, else ACTIVE', () => {
    expect(couponStatus({ ...open, startsAt: new Date('2026-11-25T12:00:01Z') }, 5, now)).toBe('SCHEDULED');
    expect(couponStatus({ ...open, endsAt: now }, 5, now)).toBe('ENDED');
    expect(couponStatus(open, 0, now)).toBe('SOLD_OUT');
    expect(couponStatus({ ...open, endsAt: null }, 1, now)).toBe('ACTIVE');
  });

  test('a stock reading is newer by epoch first, then by version', () => {
    expect(isNewerStock({ epoch: 2, version: 1 }, { epoch: 1, version: 900 })).toBe(true);
    expect(isNewerStock({ epoch: 1, version: 5 }, { epoch: 1, version: 4 })).toBe(true);
    expect(isNewerStock({ epoch: 1, version: 4 }, { epoch: 1, version: 4 })).toBe(false);
    expect(isNewerStock({ epoch: 1, version: 9 }, { epoch: 2, version: 1 })).toBe(false);
  });
});

describe('DateTime', () => {
  test('accepts ISO-8601 with a zone and normalises to the instant', () => {
    expect(parseDateTime('2026-11-25T13:00:00+01:00').toISOString()).toBe('2026-11-25T12:00:00.000Z');
  });
  test.each(['tomorrow', '2026-11-25', '2026-11-25T12:00:00', '2026-13-45T99:00:00Z', 42])('rejects %p', (value) => {
    expect(codeOf(() => parseDateTime(value))).toBe('BAD_USER_INPUT');
  });
});
