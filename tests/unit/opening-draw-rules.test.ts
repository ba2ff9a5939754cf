import { createHash, createHmac } from 'node:crypto';
import { validateCreateCoupon, validateUpdateCoupon } from '../../src/coupons/coupon-catalog';
import { drawCommitmentOf, newDrawSeed, rankKeyOf } from '../../src/coupons/opening-draw';
import type { CouponDefinition } from '../../src/coupons/coupon-model';

const now = new Date('2026-03-01T10:00:00Z');
const coupon = (overrides: Partial<CouponDefinition> = {}): CouponDefinition => ({
  id: 'c',
  name: 'Sale',
  totalQuantity: 100,
  startsAt: new Date('2026-03-01T12:00:00Z'),
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

describe('the opening draw window', () => {
  test('a coupon without openingDrawMs keeps first come, first served (no window)', () => {
    expect(validateCreateCoupon({ name: 'Sale', totalQuantity: 1 }, now).openingDrawMs).toBeUndefined();
  });

  test.each([0, 1, 1000, 2000])('openingDrawMs %i is accepted', (ms) => {
    expect(validateCreateCoupon({ name: 'Sale', totalQuantity: 1, openingDrawMs: ms }, now).openingDrawMs).toBe(ms);
  });

  test.each([-1, 2001, 1.5])('openingDrawMs %d is BAD_USER_INPUT naming the field', (ms) => {
    expect(fieldOf(() => validateCreateCoupon({ name: 'Sale', totalQuantity: 1, openingDrawMs: ms }, now))).toBe('openingDrawMs');
  });

  test('the window changes only while the coupon is SCHEDULED, and cannot be removed', () => {
    expect(validateUpdateCoupon(coupon(), { openingDrawMs: 500 }, now, 0).openingDrawMs).toBe(500);
    const started = coupon({ startsAt: new Date('2026-03-01T09:00:00Z'), openingDrawMs: 500 });
    expect(fieldOf(() => validateUpdateCoupon(started, { openingDrawMs: 1000 }, now, 0))).toBe('openingDrawMs');
    // Giving the same value again is no change.
    expect(fieldOf(() => validateUpdateCoupon(started, { openingDrawMs: 500 }, now, 0))).toBe('accepted');
    expect(fieldOf(() => validateUpdateCoupon(coupon(), { openingDrawMs: null }, now, 0))).toBe('openingDrawMs');
  });

  test('an update keeps the committed seed fields of the coupon', () => {
    const current = coupon({ openingDrawMs: 500, drawCommitment: 'ab'.repeat(32) });
    expect(validateUpdateCoupon(current, { name: 'New' }, now, 0)).toMatchObject({ openingDrawMs: 500, drawCommitment: 'ab'.repeat(32) });
  });
});

describe('seed, commitment and ranking key', () => {
  test('a new seed is 32 random bytes and its commitment is the hex SHA-256 of those bytes', () => {
    const a = newDrawSeed();
    const b = newDrawSeed();
    expect(a.seed).toMatch(/^[0-9a-f]{64}$/);
    expect(a.seed).not.toBe(b.seed);
    expect(a.commitment).toBe(createHash('sha256').update(Buffer.from(a.seed, 'hex')).digest('hex'));
    expect(drawCommitmentOf(a.seed)).toBe(a.commitment);
  });

  test('the ranking key is HMAC-SHA256 keyed by the seed bytes over the UTF-8 user id, lowercase hex', () => {
    const seed = Buffer.alloc(32, 7);
    expect(rankKeyOf(seed, 'zoë')).toBe(createHmac('sha256', seed).update(Buffer.from('zoë', 'utf8')).digest('hex'));
    expect(rankKeyOf(seed, 'zoë')).toMatch(/^[0-9a-f]{64}$/);
  });
});
