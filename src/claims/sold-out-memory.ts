/**
 * Sold-out coupons answered from memory, so the bulk of a drop (everyone after the stock is gone)
 * costs no Redis round trip, scales with instances rather than with one Redis shard, and is
 * answered even while Redis is down.
 *
 * A coupon is remembered once MongoDB holds `totalQuantity` issuances of it: then every unit is
 * durable, none is pending, and no claim can win until stock comes back. Its winners are loaded
 * once (one query, bounded by the stock), so a winner who claims again hears ALREADY_ISSUED with
 * their own issuance and everyone else SOLD_OUT, exactly as the claim script would answer.
 *
 * Stock that comes back (a unit returned, a quantity raised, a rebuild) must end the shortcut on
 * every instance within 1 s: each remembered coupon's stock is read from Redis every
 * CHECK_INTERVAL_MS (one command per coupon per instance, not per claim) and any remaining > 0
 * forgets it. A failed read keeps it: while Redis is down, sold out is still sold out.
 */
import type { Logger } from 'pino';
import { LIVE, type Models } from '../mongo/models';
import type { ClaimOutcome, CouponDefinition, IssuanceRecord } from '../coupons/coupon-model';
import { toIssuanceRecord } from './issuance-writer';
import { PeriodicTask } from '../support/periodic-task';

/** How often a remembered coupon's stock is checked in Redis: bounds how long a returned unit goes unseen. */
export const CHECK_INTERVAL_MS = 500;
/** A coupon nobody has claimed for this long is forgotten; the next sold-out reply learns it again. */
const IDLE_MS = 60_000;
/** Winners held in memory across all coupons; beyond it, sold-out claims go to Redis as before. */
const MAX_WINNERS = 1_000_000;
/** A coupon whose winners are not all durable yet is looked up again at most this often. */
const RELOAD_AFTER_MS = 250;

interface Settled {
  coupon: CouponDefinition;
  winners: Map<string, IssuanceRecord>;
  usedAt: number;
}

/** Where the remembered coupons' stock is read: the Redis gate. */
export interface StockSource {
  stock(coupon: CouponDefinition): Promise<{ remaining: number }>;
}

export class SoldOutMemory {
  private readonly settled = new Map<string, Settled>();
  private readonly tried = new Map<string, number>();
  private winnerCount = 0;
  private readonly task: PeriodicTask;

  constructor(
    private readonly models: Models,
    private readonly stockSource: StockSource,
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
  ) {
    this.task = new PeriodicTask(() => this.check(), logger, 'sold-out memory check failed; will retry');
  }

  /** The answer the claim script would give, when the coupon is known sold out; else undefined. */
  answer(couponId: string, userId: string): ClaimOutcome | undefined {
    const entry = this.settled.get(couponId);
    if (!entry) return undefined;
    const now = this.clock();
    entry.usedAt = now;
    const issuance = entry.winners.get(userId);
    if (issuance) return { status: 'ALREADY_ISSUED', issuance, remaining: 0 };
    const { startsAt, endsAt } = entry.coupon;
    if (now < startsAt.getTime()) return undefined;
    if (endsAt && now >= endsAt.getTime()) return { status: 'ENDED', issuance: null, remaining: 0 };
    return { status: 'SOLD_OUT', issuance: null, remaining: 0 };
  }

  /** Redis answered SOLD_OUT: remember the coupon if MongoDB holds all of its units. Never throws. */
  soldOut(coupon: CouponDefinition): void {
    if (this.settled.has(coupon.id)) return;
    const now = this.clock();
    if ((this.tried.get(coupon.id) ?? -Infinity) + RELOAD_AFTER_MS > now) return;
    if (this.winnerCount + coupon.totalQuantity > MAX_WINNERS) return;
    this.tried.set(coupon.id, now);
    this.learn(coupon).catch((error: Error) => this.logger.warn({ couponId: coupon.id, err: error.message }, 'could not load the winners of a sold-out coupon'));
  }

  /** Stock may have come back: answer from Redis again. */
  forget(couponId: string): void {
    const entry = this.settled.get(couponId);
    if (!entry) return;
    this.settled.delete(couponId);
    this.tried.delete(couponId);
    this.winnerCount -= entry.winners.size;
  }

  get size(): number {
    return this.settled.size;
  }

  start(): void {
    this.task.start(CHECK_INTERVAL_MS);
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** Remembers the coupon when MongoDB holds all of its units (awaited by tests; claims call soldOut). */
  async learn(coupon: CouponDefinition): Promise<void> {
    // Live issuances only: a cancelled winner is not a winner any more, and its unit is back in stock.
    const docs = await this.models.Issuance.find({ couponId: coupon.id, ...LIVE }, { couponId: 1, userId: 1, sequence: 1, issuedAt: 1, status: 1, redeemedAt: 1, orderId: 1 }).lean();
    // Fewer than the stock: a winner's write is still in flight (or was lost and will be
    // revoked, returning its unit). Not settled; a later SOLD_OUT tries again.
    if (docs.length < coupon.totalQuantity || this.settled.has(coupon.id)) return;
    const winners = new Map(docs.map((doc) => [doc.userId, { ...toIssuanceRecord(doc), lifecycleUnknown: true as const }]));
    this.settled.set(coupon.id, { coupon, winners, usedAt: this.clock() });
    this.winnerCount += winners.size;
  }

  /** Forgets coupons whose stock came back, and those nobody claims any more. */
  async check(): Promise<void> {
    const now = this.clock();
    await Promise.all(
      [...this.settled.values()].map(async ({ coupon, usedAt }) => {
        if (now - usedAt > IDLE_MS) return this.forget(coupon.id);
        const stock = await this.stockSource.stock(coupon).catch(() => undefined);
        if (stock && stock.remaining > 0) this.forget(coupon.id);
      }),
    );
  }
}
