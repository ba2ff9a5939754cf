/**
 * The one context builder, shared by HTTP requests and WebSocket subscriptions.
 * A bad token is kept as an error and only thrown by operations that need a user,
 * because stock is public.
 */
import type { GraphQLError } from 'graphql';
import { forbidden, unauthenticated } from './errors';
import type { AuditLog } from './services/audit-log';
import type { Authenticator, Viewer } from './services/auth';
import type { ClaimOutcome } from './services/claim-service';
import type { CouponAdmin } from './services/coupon-admin';
import type { CouponCatalog } from './services/coupon-catalog';
import type { CouponDirectory } from './services/coupon-directory';
import type { CouponReader } from './services/coupon-reader';
import type { IssuanceLifecycle } from './services/issuance-lifecycle';
import type { StockFeed } from './services/stock-feed';

/**
 * What claimCoupon needs, whichever strategy decides it: ClaimService (the Redis gate) or
 * DbLockClaims / DbAtomicClaims (MongoDB alone, CLAIM_STRATEGY=db-lock or db-atomic, for load comparison only).
 */
export interface ClaimPort {
  claim(couponId: string, userId: string, clientIp: string): Promise<ClaimOutcome>;
}

export interface Services {
  authenticator: Authenticator;
  catalog: CouponCatalog;
  claims: ClaimPort;
  reader: CouponReader;
  stockFeed: StockFeed;
  /** updateCoupon, endCoupon. */
  admin: CouponAdmin;
  /** redeemIssuance, cancelIssuance. */
  lifecycle: IssuanceLifecycle;
  /** The admin pages of coupons and issuances, and the CSV export's stream. */
  directory: CouponDirectory;
  audit: AuditLog;
}

export interface GraphQLContext {
  services: Services;
  viewer?: Viewer;
  /** Why the presented credentials were refused, if they were. */
  authError?: GraphQLError;
  clientIp: string;
  requestId: string;
}

export interface ContextInput {
  authorization: string | undefined | null;
  clientIp: string;
  requestId: string;
}

/** Synchronous (token checks are), so a compiled request awaits nothing before its resolver. */
export function buildContext(services: Services, input: ContextInput): GraphQLContext {
  const base = { services, clientIp: input.clientIp, requestId: input.requestId };
  try {
    return { ...base, viewer: services.authenticator.viewerFrom(input.authorization) };
  } catch (error) {
    return { ...base, authError: error as GraphQLError };
  }
}

export function requireViewer(context: GraphQLContext): Viewer {
  if (context.authError) throw context.authError;
  if (!context.viewer) throw unauthenticated();
  return context.viewer;
}

export function requireAdmin(context: GraphQLContext): Viewer {
  const viewer = requireViewer(context);
  if (!viewer.admin) throw forbidden();
  return viewer;
}
