import { requireAdmin, requireViewer } from '../context';
import type { QueryResolvers } from '../generated/resolvers-types';

export const Query: QueryResolvers = {
  coupon: (_, { id }, context) => context.services.reader.coupon(id, context),
  myIssuances: (_, __, context) => context.services.reader.issuancesOf(requireViewer(context).id),
  coupons: (_, { status, first, after }, context) => {
    requireAdmin(context);
    return context.services.directory.coupons(status, first, after);
  },
  couponIssuances: (_, { couponId, first, after }, context) => {
    requireAdmin(context);
    return context.services.directory.issuances(couponId, first, after);
  },
  auditLog: (_, { couponId, first, after }, context) => {
    requireAdmin(context);
    return context.services.audit.page(couponId, first, after);
  },
  // v3: webhooks
  webhooks: (_, __, context) => {
    requireAdmin(context);
    return context.services.webhooks.list();
  },
};
