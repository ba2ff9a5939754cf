import { requireAdmin, requireViewer } from '../context';
import type { MutationResolvers } from '../generated/resolvers-types';

export const Mutation: MutationResolvers = {
  createCoupon: async (_, { input }, context) => {
    const actor = requireAdmin(context);
    const definition = await context.services.catalog.create(input);
    await context.services.audit.record({ action: 'CREATE_COUPON', actor, couponId: definition.id, after: { ...definition, id: undefined } });
    return context.services.reader.view(definition);
  },
  claimCoupon: (_, { couponId }, context) => context.services.claims.claim(couponId, requireViewer(context).id, context.clientIp, context.releaseSlot),
  updateCoupon: async (_, { id, input }, context) => {
    const definition = await context.services.admin.update(requireAdmin(context), id, input);
    return context.services.reader.stored(definition);
  },
  endCoupon: async (_, { id }, context) => {
    const definition = await context.services.admin.end(requireAdmin(context), id);
    return context.services.reader.stored(definition);
  },
  redeemIssuance: (_, { issuanceId, orderId }, context) => context.services.lifecycle.redeem(requireViewer(context), issuanceId, orderId),
  cancelIssuance: (_, { issuanceId }, context) => context.services.lifecycle.cancel(requireViewer(context), issuanceId),
  // v3: webhooks
  createWebhook: (_, { url, events }, context) => {
    requireAdmin(context);
    return context.services.webhooks.create(url, events);
  },
  deleteWebhook: (_, { id }, context) => {
    requireAdmin(context);
    return context.services.webhooks.delete(id);
  },
  redeliverFailedEvents: (_, { webhookId }, context) => {
    requireAdmin(context);
    return context.services.webhooks.redeliver(webhookId);
  },
};
