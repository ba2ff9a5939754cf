import type { StockUpdateResolvers } from '../generated/resolvers-types';

export const StockUpdate: StockUpdateResolvers = {
  // Resolved as an update is sent, so it is the time of sending, not of the read: once per slice of
  // subscribers handed the update in one turn of the event loop (their sockets are written then).
  serverTime: () => new Date(),
};
