import type { CouponResolvers } from '../generated/resolvers-types';

export const Coupon: CouponResolvers = {
  issuedCount: (coupon) => coupon.totalQuantity - coupon.remaining,
};
