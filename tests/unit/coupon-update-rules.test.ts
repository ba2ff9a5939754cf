import { changedFields, validateUpdateCoupon } from '../../src/coupons/coupon-catalog';
import { diff, intersection, narrows } from '../../src/admin/coupon-admin';
import type { CouponDefinition } from '../../src/coupons/coupon-model';
import { sameClaimWindow } from '../../src/claims/reconciler';

const now = new Date('2026-03-01T10:00:00Z');
const at = (iso: string) => new Date(iso);
const coupon = (overrides: Partial<CouponDefinition> = {}): CouponDefinition => ({
  id: 'c',
  name: 'Sale',
  totalQuantity: 100,
  startsAt: at('2026-03-01T12:00:00Z'),
  endsAt: null,
  redeemBy: null,
  ...overrides,
});
const fieldOf = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    return (error as { extensions: { field?: string } }).extensions.field;
  }
  return 'accepted';
};

describe('updateCoupon rules', () => {
  test('what is not given stays as it is, and null removes endsAt and redeemBy', () => {
    const current = coupon({ endsAt: at('2026-03-02T00:00:00Z'), redeemBy: at('2026-04-01T00:00:00Z') });
    expect(validateUpdateCoupon(current, { name: ' New ' }, now, 0)).toEqual({ ...current, name: 'New' });
    expect(validateUpdateCoupon(current, { endsAt: null, redeemBy: null }, now, 0)).toEqual({ ...current, endsAt: null, redeemBy: null });
  });

  test('startsAt changes only while the coupon is SCHEDULED', () => {
    expect(fieldOf(() => validateUpdateCoupon(coupon(), { startsAt: at('2026-03-01T11:00:00Z') }, now, 0))).toBe('accepted');
    const started = coupon({ startsAt: at('2026-03-01T09:00:00Z') });
    expect(fieldOf(() => validateUpdateCoupon(started, { startsAt: at('2026-03-01T11:00:00Z') }, now, 0))).toBe('startsAt');
    expect(fieldOf(() => validateUpdateCoupon(started, { startsAt: started.startsAt }, now, 0))).toBe('accepted');
  });

  test('totalQuantity never goes below issuedCount nor out of range', () => {
    expect(fieldOf(() => validateUpdateCoupon(coupon(), { totalQuantity: 40 }, now, 40))).toBe('accepted');
    expect(fieldOf(() => validateUpdateCoupon(coupon(), { totalQuantity: 39 }, now, 40))).toBe('totalQuantity');
    expect(fieldOf(() => validateUpdateCoupon(coupon(), { totalQuantity: 10_000_001 }, now, 0))).toBe('totalQuantity');
    expect(fieldOf(() => validateUpdateCoupon(coupon(), { totalQuantity: null }, now, 0))).toBe('totalQuantity');
  });

  test('endsAt and redeemBy must come after startsAt, checked on the result', () => {
    expect(fieldOf(() => validateUpdateCoupon(coupon(), { endsAt: at('2026-03-01T12:00:00Z') }, now, 0))).toBe('endsAt');
    expect(fieldOf(() => validateUpdateCoupon(coupon(), { redeemBy: at('2026-03-01T11:00:00Z') }, now, 0))).toBe('redeemBy');
    const ending = coupon({ endsAt: at('2026-03-01T13:00:00Z') });
    expect(fieldOf(() => validateUpdateCoupon(ending, { startsAt: at('2026-03-01T14:00:00Z') }, now, 0))).toBe('endsAt');
  });

  test('the audit trail records only the fields that changed, before and after', () => {
    const before = coupon();
    const after = { ...before, totalQuantity: 120, endsAt: at('2026-03-02T00:00:00Z') };
    expect(diff(before, after)).toEqual({ before: { totalQuantity: 100, endsAt: null }, after: { totalQuantity: 120, endsAt: '2026-03-02T00:00:00.000Z' } });
  });

  test("the reconciler sees a claim state whose total or window differs from MongoDB's, and leaves one not loaded alone", () => {
    const c = coupon({ endsAt: at('2026-03-02T00:00:00Z') });
    const redis = { total: 100, startsAt: c.startsAt.getTime(), endsAt: c.endsAt!.getTime() };
    expect(sameClaimWindow(redis, c)).toBe(true);
    expect(sameClaimWindow({ ...redis, total: 99 }, c)).toBe(false);
    expect(sameClaimWindow({ ...redis, endsAt: 0 }, c)).toBe(false);
    expect(sameClaimWindow({ ...redis, endsAt: 0 }, { ...c, endsAt: null })).toBe(true);
    expect(sameClaimWindow(null, c)).toBe(true);
  });
});

describe('changes by revision', () => {
  test('a total below the highest live sequence is refused even when it is not below issuedCount', () => {
    const current = coupon({ totalQuantity: 4, startsAt: at('2026-03-01T09:00:00Z') });
    expect(fieldOf(() => validateUpdateCoupon(current, { totalQuantity: 2 }, now, 2, 4))).toBe('totalQuantity');
    expect(fieldOf(() => validateUpdateCoupon(current, { totalQuantity: 3 }, now, 2, 4))).toBe('totalQuantity');
    expect(validateUpdateCoupon(current, { totalQuantity: 4 }, now, 2, 4).totalQuantity).toBe(4);
  });

  test('the new definition keeps the revision it was computed from, and only changed fields are written', () => {
    const current = coupon({ revision: 7 });
    const next = validateUpdateCoupon(current, { name: 'Renamed' }, now, 0);
    expect(next.revision).toBe(7);
    expect(changedFields(current, next)).toEqual({ name: 'Renamed' });
  });

  test('a change narrows when it admits less anywhere; the hold is what both admit', () => {
    const current = coupon({ totalQuantity: 10, endsAt: at('2026-03-02T12:00:00Z') });
    expect(narrows(current, { ...current, totalQuantity: 50 })).toBe(false);
    expect(narrows(current, { ...current, endsAt: null })).toBe(false);
    expect(narrows(current, { ...current, name: 'x' })).toBe(false);
    const mixed = { ...current, totalQuantity: 50, endsAt: at('2026-03-01T13:00:00Z') };
    expect(narrows(current, mixed)).toBe(true);
    expect(intersection(current, mixed)).toMatchObject({ totalQuantity: 10, endsAt: at('2026-03-01T13:00:00Z'), startsAt: current.startsAt });
    expect(narrows(coupon({ endsAt: null }), coupon({ endsAt: at('2026-03-02T12:00:00Z') }))).toBe(true);
  });
});
