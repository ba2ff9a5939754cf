import type { CouponResolvers } from '../generated/resolvers-types';

export const Coupon: CouponResolvers = {
  issuedCount: (coupon) => coupon.totalQuantity - coupon.remaining,
  // v3 opening draw: the commitment while a window is set; the seed and entrants once it is done.
  openingDrawMs: (coupon) => coupon.openingDrawMs ?? 0,
  drawCommitment: (coupon) => (coupon.openingDrawMs ? (coupon.drawCommitment ?? null) : null),
  drawSeed: (coupon) => coupon.drawSeed ?? null,
  drawEntrants: (coupon) => coupon.drawEntrants ?? null,
};
