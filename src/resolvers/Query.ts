import { requireViewer } from '../context';
import type { QueryResolvers } from '../generated/resolvers-types';

export const Query: QueryResolvers = {
  coupon: (_, { id }, { services }) => services.reader.coupon(id),
  myIssuances: (_, __, context) => context.services.reader.issuancesOf(requireViewer(context).id),
};
