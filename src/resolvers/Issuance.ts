import type { IssuanceResolvers } from '../generated/resolvers-types';

export const Issuance: IssuanceResolvers = {
  coupon: (issuance, _, { services }) => services.reader.couponOf(issuance),
  // A claim's ALREADY_ISSUED comes from Redis, which does not know about redeems and cancels since.
  status: async (issuance, _, { services }) => (await services.reader.lifecycle(issuance)).status,
  redeemedAt: async (issuance, _, { services }) => (await services.reader.lifecycle(issuance)).redeemedAt ?? null,
  orderId: async (issuance, _, { services }) => (await services.reader.lifecycle(issuance)).orderId ?? null,
  cancelledAt: async (issuance, _, { services }) => (await services.reader.lifecycle(issuance)).cancelledAt ?? null,
};
