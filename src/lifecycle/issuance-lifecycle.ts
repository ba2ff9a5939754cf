/**
 * What happens to an issuance after it was won: redeemed for an order, or cancelled and its unit
 * given back to stock.
 *
 * MongoDB decides both, each in one conditional single-document update on a live ACTIVE
 * issuance, so two redeems or a redeem and a cancel racing on two instances cannot both win:
 * an issuance is redeemed at most once and a redeemed one is never cancelled (guarantee 6).
 * A cancel sets `cancelKey`, which takes the issuance out of the unique indexes in the same update
 * (src/mongo/models.ts). Then Redis: cancel-4.lua drops the winner entry and puts the sequence
 * back in `free` atomically, so exactly one of the claimers racing for it wins it. If Redis fails
 * there (or the service dies in between), MongoDB already counts the unit as free: the
 * reconciler sees Redis ahead of MongoDB and rebuilds the coupon's state from it, which
 * counts only live issuances. Meanwhile a claim of the cancelled user that Redis answers
 * ALREADY_ISSUED is checked against MongoDB (claim-service.ts), finds it CANCELLED and finishes
 * this Redis step itself, so ALREADY_ISSUED is only ever a live issuance. A repeated cancel runs
 * the Redis step again and announces a returned unit only if that step returned one now (the
 * first attempt had failed): a no-op cancel publishes nothing.
 *
 * Cancels and redeems count against a per-user rate limit of their own (LIFECYCLE_RATE_PER_USER).
 */
import { Types } from 'mongoose';
import type { Logger } from 'pino';
import { badUserInput, issuanceExpired, issuanceNotActive, notFound, toClientError, withDeadline } from '../errors';
import type { Models } from '../mongo/models';
import type { AuditLog } from '../access/audit-log';
import type { Viewer } from '../access/auth';
import type { CouponCatalog } from '../coupons/coupon-catalog';
import type { IssuanceRecord } from '../coupons/coupon-model';
import type { ClaimRateLimiter } from '../access/rate-limiter';
import { toIssuanceRecord } from '../claims/issuance-writer';

export const ORDER_ID_MAX = 200;
/** Inside the request's 2.5 s: a stalled MongoDB answers SERVICE_UNAVAILABLE, never a hang. */
const DEADLINE_MS = 2000;

/** Where a cancelled unit goes back: the Redis gate (absent with CLAIM_STRATEGY=db-lock). */
export interface StockReturn {
  cancel(couponId: string, userId: string, issuanceId: string, sequence: number): Promise<boolean>;
}

export interface LifecycleHooks {
  /** A unit went back to stock: sold-out memories everywhere, and watchers, must hear it. */
  onReturned(couponId: string): Promise<void> | void;
}

/** Live and ACTIVE: a document without status was written before version 2 and is ACTIVE. */
const ACTIVE_AND_LIVE = { status: { $in: ['ACTIVE', null] as Array<'ACTIVE' | null> }, cancelKey: null };

export function assertIssuanceId(id: string): void {
  if (!/^[0-9a-f]{24}$/i.test(id) || !Types.ObjectId.isValid(id)) throw badUserInput('issuanceId is not a valid issuance id', 'issuanceId');
}

export class IssuanceLifecycle {
  constructor(
    private readonly models: Models,
    private readonly catalog: CouponCatalog,
    private readonly stock: StockReturn | undefined,
    private readonly audit: AuditLog,
    private readonly hooks: LifecycleHooks,
    private readonly logger: Logger,
    /** Per user, cancels and redeems together; RATE_LIMITED beyond it. */
    private readonly limiter?: Pick<ClaimRateLimiter, 'consume'>,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async redeem(actor: Viewer, issuanceId: string, orderId: string): Promise<IssuanceRecord> {
    assertIssuanceId(issuanceId);
    // Stored as given: trimming would make " A1" and "A1" one order. Blank is not an order id.
    const order = orderId;
    if (order.trim().length < 1 || [...order].length > ORDER_ID_MAX) throw badUserInput(`orderId must be 1 to ${ORDER_ID_MAX} characters, not only blanks`, 'orderId');
    if (!actor.admin) await this.limiter?.consume({ userId: actor.id, clientIp: '' });
    return this.guard(async () => {
      const current = await this.visible(actor, issuanceId);
      const settled = this.redeemAnswer(current, order);
      if (settled) return settled;
      const coupon = await this.catalog.fresh(current.couponId);
      const now = this.clock();
      if (coupon?.redeemBy && now >= coupon.redeemBy) throw issuanceExpired();
      const doc = await this.models.Issuance.findOneAndUpdate(
        { _id: new Types.ObjectId(issuanceId), ...ACTIVE_AND_LIVE },
        { $set: { status: 'REDEEMED', redeemedAt: now, orderId: order } },
        { returnDocument: 'after' },
      ).lean();
      if (!doc) {
        // Another redeem or a cancel got there first: answer as if it had come before us.
        const raced = await this.visible(actor, issuanceId);
        return this.redeemAnswer(raced, order) ?? raced;
      }
      const redeemed = toIssuanceRecord(doc);
      await this.audit.record({ action: 'REDEEM_ISSUANCE', actor, couponId: redeemed.couponId, issuanceId, before: { status: current.status }, after: { status: 'REDEEMED', orderId: order, redeemedAt: now.toISOString() } });
      return redeemed;
    });
  }

  async cancel(actor: Viewer, issuanceId: string): Promise<IssuanceRecord> {
    assertIssuanceId(issuanceId);
    if (!actor.admin) await this.limiter?.consume({ userId: actor.id, clientIp: '' });
    return this.guard(async () => {
      const current = await this.visible(actor, issuanceId);
      if (current.status === 'REDEEMED') throw issuanceNotActive('a redeemed issuance cannot be cancelled');
      if (current.status === 'CANCELLED') {
        // Returned unchanged; the Redis step again, in case it failed the first time (it acts once).
        await this.returnUnit(current, true);
        return current;
      }
      const now = this.clock();
      const _id = new Types.ObjectId(issuanceId);
      const doc = await this.models.Issuance.findOneAndUpdate(
        { _id, ...ACTIVE_AND_LIVE },
        { $set: { status: 'CANCELLED', cancelledAt: now, cancelKey: _id } },
        { returnDocument: 'after' },
      ).lean();
      if (!doc) {
        const raced = await this.visible(actor, issuanceId);
        if (raced.status === 'REDEEMED') throw issuanceNotActive('a redeemed issuance cannot be cancelled');
        return raced;
      }
      const cancelled = toIssuanceRecord(doc);
      await this.returnUnit(cancelled);
      await this.audit.record({ action: 'CANCEL_ISSUANCE', actor, couponId: cancelled.couponId, issuanceId, before: { status: current.status }, after: { status: 'CANCELLED', cancelledAt: now.toISOString(), sequence: cancelled.sequence } });
      return cancelled;
    });
  }

  /** The answer a redeem gets without changing anything, or undefined when it must try. */
  private redeemAnswer(issuance: IssuanceRecord, orderId: string): IssuanceRecord | undefined {
    if (issuance.status === 'REDEEMED') {
      if (issuance.orderId === orderId) return issuance;
      throw issuanceNotActive('this issuance was redeemed for another order');
    }
    if (issuance.status === 'CANCELLED') throw issuanceNotActive('a cancelled issuance cannot be redeemed');
    return undefined;
  }

  /** The issuance, if the actor may see it: its holder or an admin; NOT_FOUND otherwise, exactly as an unknown one. */
  private async visible(actor: Viewer, issuanceId: string): Promise<IssuanceRecord> {
    const doc = await this.models.Issuance.findById(new Types.ObjectId(issuanceId)).lean();
    if (!doc || (!actor.admin && doc.userId !== actor.id)) throw notFound('issuance');
    return toIssuanceRecord(doc);
  }

  /**
   * The cancelled unit back to stock in Redis, and the news to every instance. A Redis failure is
   * logged, not answered: MongoDB holds the cancel, and the reconciler repairs Redis from it.
   * A repeated cancel (`repeat`) has news only when its Redis step returned the unit now.
   */
  private async returnUnit(cancelled: IssuanceRecord, repeat = false): Promise<void> {
    let returned = false;
    try {
      returned = (await this.stock?.cancel(cancelled.couponId, cancelled.userId, cancelled.id, cancelled.sequence)) ?? false;
    } catch (error) {
      this.logger.warn({ couponId: cancelled.couponId, issuanceId: cancelled.id, err: (error as Error).message }, 'cancelled unit not returned in redis; the reconciler will rebuild the coupon from mongodb');
    }
    // The first time always: another instance may still remember the cancelled user as a winner of a sold-out coupon.
    if (!repeat || returned) await this.hooks.onReturned(cancelled.couponId);
  }

  /** Coded errors pass; MongoDB and Redis failures become SERVICE_UNAVAILABLE, the cause kept for the logs. */
  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(work(), DEADLINE_MS, 'issuance change');
    } catch (error) {
      const clientError = toClientError(error);
      throw clientError === error ? error : Object.assign(clientError, { originalError: error });
    }
  }
}
