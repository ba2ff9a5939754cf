import type { IssuanceResolvers } from '../generated/resolvers-types';

export const Issuance: IssuanceResolvers = {
  coupon: (issuance, _, { services }) => services.reader.couponOf(issuance),
};
