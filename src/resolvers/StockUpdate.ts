import type { StockUpdateResolvers } from '../generated/resolvers-types';

export const StockUpdate: StockUpdateResolvers = {
  // Resolved as each update is sent to its subscriber, so it is the time of sending, not of the read.
  serverTime: () => new Date(),
};
