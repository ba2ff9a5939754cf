import type { IssuanceResolvers } from '../generated/resolvers-types';

export const Issuance: IssuanceResolvers = {
  coupon: (issuance, _, { services }) => services.reader.couponOf(issuance),
  // A claim's ALREADY_ISSUED comes from Redis, which does not know about redeems and cancels since.
  status: async (issuance, _, context) => (await context.services.reader.lifecycle(issuance, context)).status,
  redeemedAt: async (issuance, _, context) => (await context.services.reader.lifecycle(issuance, context)).redeemedAt ?? null,
  orderId: async (issuance, _, context) => (await context.services.reader.lifecycle(issuance, context)).orderId ?? null,
  cancelledAt: async (issuance, _, context) => (await context.services.reader.lifecycle(issuance, context)).cancelledAt ?? null,
};
