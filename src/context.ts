/**
 * The one context builder, shared by HTTP requests and WebSocket subscriptions.
 * A bad token is kept as an error and only thrown by operations that need a user,
 * because stock is public.
 */
import type { GraphQLError } from 'graphql';
import { forbidden, unauthenticated } from './errors';
import type { AuditLog } from './access/audit-log';
import type { Authenticator, Viewer } from './access/auth';
import type { ClaimPort } from './claims/claim-service';
import type { CouponAdmin } from './admin/coupon-admin';
import type { CouponCatalog } from './coupons/coupon-catalog';
import type { CouponDirectory } from './admin/coupon-directory';
import type { CouponReader } from './live/coupon-reader';
import type { IssuanceLifecycle } from './lifecycle/issuance-lifecycle';
import type { ReadLimiter } from './access/read-limiter';
import type { StockFeed } from './live/stock-feed';
import type { WebhookRegistry } from './events/webhook-registry';
import type { OpeningDraw } from './draw/opening-draw';

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
  /** The cost budgets of GraphQL requests per address and per user. */
  reads: ReadLimiter;
  /** createWebhook, webhooks, deleteWebhook, redeliverFailedEvents (v3). */
  webhooks: WebhookRegistry;
  /** v3: the opening draw (its entrants for the draw.csv export). */
  openingDraw: OpeningDraw;
}

export interface GraphQLContext {
  services: Services;
  viewer?: Viewer;
  /** Why the presented credentials were refused, if they were. */
  authError?: GraphQLError;
  clientIp: string;
  requestId: string;
  /**
   * Gives the HTTP request's admission slot back (src/access/admission.ts): a claim held by an
   * opening draw waits for the draw without working, so it must not keep later requests out.
   */
  releaseSlot: (() => void) | undefined;
}

export interface ContextInput {
  authorization: string | undefined | null;
  clientIp: string;
  requestId: string;
  releaseSlot?: () => void;
}

/** Synchronous (token checks are), so a compiled request awaits nothing before its resolver. */
export function buildContext(services: Services, input: ContextInput): GraphQLContext {
  // One object of one shape per request (no spread of a base object): built for every claim.
  const context: GraphQLContext = { services, viewer: undefined, authError: undefined, clientIp: input.clientIp, requestId: input.requestId, releaseSlot: input.releaseSlot };
  try {
    context.viewer = services.authenticator.viewerFrom(input.authorization);
  } catch (error) {
    context.authError = error as GraphQLError;
  }
  return context;
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
