import type { SubscriptionResolvers } from '../generated/resolvers-types';
import type { StockSnapshot } from '../coupons/coupon-model';

export const Subscription: SubscriptionResolvers = {
  stockChanged: {
    subscribe: (_, { couponId }, { services }) => services.stockFeed.watch(couponId),
    resolve: (snapshot: StockSnapshot) => snapshot,
  },
};
