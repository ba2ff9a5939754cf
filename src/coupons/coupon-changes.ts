/**
 * Changes to a coupon that every instance must see within 1 s: a changed definition
 * (updateCoupon, endCoupon) and stock given back (cancelIssuance). The instance that made the
 * change announces it on the Redis channel `coupon-changed`; every instance then drops its cached
 * definition (the next use reads MongoDB) and its sold-out memory of the coupon.
 *
 * A message can be missed (a subscriber reconnecting, an instance starting): so the definitions
 * of the coupons each instance used in the last minute are also re-read from MongoDB every
 * REVALIDATE_MS in one query, and a definition that differs replaces the cached one. The sold-out
 * memory has its own 500 ms check of the stock position in Redis (src/claims/sold-out-memory.ts).
 * A failed SUBSCRIBE never turns the re-validation off: it runs from `start`, and the SUBSCRIBE
 * is tried again until it succeeds.
 */
import { Types } from 'mongoose';
import type { Logger } from 'pino';
import type { Models } from '../mongo/models';
import type { RedisClient } from '../redis/client';
import { toDefinition, type CouponCatalog } from './coupon-catalog';
import { PeriodicTask } from '../support/periodic-task';

export const COUPON_CHANGED_CHANNEL = 'coupon-changed';
/** How often the definitions in use are re-validated: bounds a missed message's effect to well under 1 s. */
export const REVALIDATE_MS = 500;
/** A failed SUBSCRIBE to the channel is tried again after this long. */
export const SUBSCRIBE_RETRY_MS = 1000;
/** A coupon asked for within this window counts as in use. */
const IN_USE_MS = 60_000;

export interface CouponChange {
  couponId: string;
  /** The definition changed (not only the stock). */
  definition: boolean;
}

export class CouponChanges {
  private readonly task: PeriodicTask;
  private readonly listeners: Array<(change: CouponChange) => void> = [];
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private wakeRetry: (() => void) | undefined;

  constructor(
    private readonly publisher: RedisClient,
    private readonly subscriber: RedisClient,
    private readonly catalog: CouponCatalog,
    private readonly models: Models,
    private readonly logger: Logger,
  ) {
    this.task = new PeriodicTask(() => this.revalidate(), logger, 'coupon definition re-validation failed; will retry');
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === COUPON_CHANGED_CHANNEL) this.receive(message);
    });
  }

  /** Called for every change, local or announced by another instance. */
  onChange(listener: (change: CouponChange) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Starts the re-validation at once, whatever the subscription does: it is what covers missed
   * messages, so a failed SUBSCRIBE must not turn it off. A failed SUBSCRIBE is tried again
   * (SUBSCRIBE_RETRY_MS) until it succeeds or the instance stops; resolves once subscribed.
   */
  async start(): Promise<void> {
    this.task.start(REVALIDATE_MS);
    this.stopped = false;
    for (;;) {
      try {
        await this.subscriber.subscribe(COUPON_CHANGED_CHANNEL);
        return;
      } catch (error) {
        if (this.stopped) return;
        this.logger.warn({ err: (error as Error).message }, 'could not subscribe to coupon changes; definitions are re-validated every 500 ms meanwhile; retrying');
        await new Promise<void>((resolve) => {
          this.retryTimer = setTimeout(resolve, SUBSCRIBE_RETRY_MS);
          this.wakeRetry = resolve;
        });
        if (this.stopped) return;
      }
    }
  }

  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    return this.task.stop();
  }

  /** This instance changed the coupon: apply it here at once, then tell the others. Never throws. */
  async announce(change: CouponChange): Promise<void> {
    this.apply(change, false);
    await this.publisher.publish(COUPON_CHANGED_CHANNEL, JSON.stringify(change)).catch((error: Error) =>
      // The others still see it: their re-validation (definitions) or sold-out check (stock) within 500 ms.
      this.logger.warn({ couponId: change.couponId, err: error.message }, 'coupon change not announced; other instances see it within 500 ms anyway'),
    );
  }

  /** Re-reads the definitions in use and replaces those MongoDB holds differently. */
  async revalidate(): Promise<void> {
    const ids = this.catalog.inUse(IN_USE_MS);
    if (ids.length === 0) return;
    const docs = await this.models.Coupon.find({ _id: { $in: ids.map((id) => new Types.ObjectId(id)) } }).lean();
    for (const doc of docs) this.catalog.replace(toDefinition(doc));
  }

  private receive(message: string): void {
    let change: CouponChange;
    try {
      change = JSON.parse(message) as CouponChange;
      if (typeof change.couponId !== 'string') throw new Error('no couponId');
    } catch {
      this.logger.warn('malformed coupon-changed message ignored');
      return;
    }
    this.apply(change, true);
  }

  private apply(change: CouponChange, remote: boolean): void {
    // The changing instance has the new definition cached already; the others read it again.
    if (remote && change.definition) this.catalog.drop(change.couponId);
    for (const listener of this.listeners) listener(change);
  }
}
