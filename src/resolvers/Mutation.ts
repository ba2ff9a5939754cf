import { requireAdmin, requireViewer } from '../context';
import type { MutationResolvers } from '../generated/resolvers-types';

export const Mutation: MutationResolvers = {
  createCoupon: async (_, { input }, context) => {
    requireAdmin(context);
    const definition = await context.services.catalog.create(input);
    return context.services.reader.view(definition);
  },
  claimCoupon: (_, { couponId }, context) => context.services.claims.claim(couponId, requireViewer(context).id, context.clientIp),
};
