/**
 * Claims decided by MongoDB alone, for load comparison only (load/), never the default and never
 * in production. Two strategies share the counter kept here:
 * - CLAIM_STRATEGY=db-atomic (this file): every claim takes the coupon document's counter with
 *   one conditional `$inc`, then inserts its issuance; the best a database alone can do.
 * - CLAIM_STRATEGY=db-lock (db-lock-claims.ts): the incident's "before", a pessimistic lock on the
 *   coupon document held across the claim's round trips.
 *
 * The counter lives on the coupon document (`issuedCount`, with `stockVersion` ordering stock
 * readings) and only these strategies touch it; the Redis strategy never reads or writes it.
 * The unique indexes on issuances still decide: one per user, and at most one per sequence in
 * 1..totalQuantity, so no outcome here can oversell whatever the counter says.
 */
import { Types, type mongo } from 'mongoose';
import type { Logger } from 'pino';
import { notFound, serviceUnavailable } from '../../errors';
import { LIVE, type Models } from '../../mongo/models';
import type { StockReply } from '../../redis/scripts';
import { guardedClaim, type ClaimPort, type ClaimServiceOptions } from '../claim-service';
import type { CouponCatalog } from '../../coupons/coupon-catalog';
import type { ClaimOutcome, CouponDefinition, IssuanceRecord } from '../../coupons/coupon-model';
import { isDuplicateKey, toIssuanceRecord } from '../issuance-writer';
import { PeriodicTask } from '../../support/periodic-task';

/** Sequence collisions only follow a give-back or a repair; a few attempts always clear them. */
const MAX_INSERT_ATTEMPTS = 5;

export interface CounterFields {
  issuedCount?: number;
  stockVersion?: number;
  /** db-lock only: who holds the coupon's lock, and until when (a lease, so a dead holder cannot block forever). */
  lockHolder?: string;
  lockedUntil?: Date;
}

/** Which unique index an insert hit: real MongoDB names it in keyPattern, the embedded server only in the message. */
export function violatedIndex(error: unknown): 'one_per_user' | 'one_per_sequence' | undefined {
  if (!isDuplicateKey(error)) return undefined;
  const e = error as { keyPattern?: Record<string, unknown>; message?: string };
  if (e.keyPattern?.userId || /one_(live_)?per_user/.test(e.message ?? '')) return 'one_per_user';
  if (e.keyPattern?.sequence || /one_(live_)?per_sequence/.test(e.message ?? '')) return 'one_per_sequence';
  return undefined;
}

/** The coupon counter the db strategies keep, read as stock (shaped like the Redis gate's reading). */
export class DbCounterStock {
  constructor(private readonly models: Models) {}

  async stock(coupon: CouponDefinition): Promise<StockReply> {
    const doc = await this.counters().findOne({ _id: new Types.ObjectId(coupon.id) }, { projection: { issuedCount: 1, stockVersion: 1 } });
    // One epoch, ever: stockVersion alone orders readings, since every change increments it.
    return { loaded: true, total: coupon.totalQuantity, remaining: remainingOf(coupon, doc), epoch: 1, version: doc?.stockVersion ?? 0 };
  }

  /**
   * The coupons collection below Mongoose: the counter fields belong to this strategy alone and
   * are not part of the coupon schema, which Mongoose would otherwise strip from updates.
   */
  counters(): mongo.Collection<CounterFields & { _id: Types.ObjectId }> {
    return this.models.Coupon.collection as unknown as mongo.Collection<CounterFields & { _id: Types.ObjectId }>;
  }
}

export const remainingOf = (coupon: CouponDefinition, doc: CounterFields | null): number => Math.max(0, coupon.totalQuantity - (doc?.issuedCount ?? 0));

/**
 * What both db strategies share: the guard around every claim, the counter's repair, and the
 * reads. Each strategy supplies its decision.
 */
export abstract class DbCounterClaims implements ClaimPort {
  /** Coupons whose counter disagreed with MongoDB's issuances at the last pass, by stockVersion then. */
  private readonly suspects = new Map<string, number>();
  private readonly task: PeriodicTask;

  constructor(
    protected readonly catalog: CouponCatalog,
    protected readonly models: Models,
    protected readonly counter: DbCounterStock,
    protected readonly logger: Logger,
    protected readonly options: ClaimServiceOptions,
    protected readonly clock: () => Date = () => new Date(),
  ) {
    this.task = new PeriodicTask((signal) => this.repairOnce(signal), logger, 'db counter repair failed; will retry');
  }

  claim(couponId: string, userId: string, clientIp: string): Promise<ClaimOutcome> {
    return guardedClaim(this.options, { couponId, userId, clientIp }, () => this.decide(couponId, userId));
  }

  /** Runs `repairOnce` now and then every `intervalMs` until `stop`. */
  start(intervalMs: number): void {
    this.task.start(intervalMs);
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /**
   * Sets a counter back to the number of issuances MongoDB holds once it has disagreed for a
   * whole pass with no claim in between (a claim died between its `$inc` and its insert, or the
   * coupon was claimed under another strategy). The write is conditional on `stockVersion`, so
   * a claim landing meanwhile wins and the repair waits for the next quiet pass.
   */
  async repairOnce(signal?: AbortSignal): Promise<void> {
    for (const coupon of await this.catalog.listRecentlyOpen()) {
      if (signal?.aborted) return;
      const _id = new Types.ObjectId(coupon.id);
      const [doc, held] = await Promise.all([
        this.counters().findOne({ _id }, { projection: { issuedCount: 1, stockVersion: 1 } }),
        this.models.Issuance.countDocuments({ couponId: _id, ...LIVE }),
      ]);
      const version = doc?.stockVersion ?? 0;
      if ((doc?.issuedCount ?? 0) === held) {
        this.suspects.delete(coupon.id);
        continue;
      }
      if (this.suspects.get(coupon.id) !== version) {
        this.suspects.set(coupon.id, version);
        continue;
      }
      const versionFilter = version === 0 ? { stockVersion: { $exists: false } } : { stockVersion: version };
      const fixed = await this.counters().updateOne({ _id, ...versionFilter }, { $set: { issuedCount: held }, $inc: { stockVersion: 1 } });
      this.suspects.delete(coupon.id);
      if (fixed.modifiedCount === 1) {
        this.logger.warn({ couponId: coupon.id, counted: doc?.issuedCount ?? 0, held }, 'db counter set back to the issuances mongodb holds');
        this.options.onStockChanged(coupon.id);
      }
    }
  }

  /** The strategy's decision, inside the guard (deadline, metrics, error mapping). */
  protected abstract decide(couponId: string, userId: string): Promise<ClaimOutcome>;

  protected async heldBy(coupon: CouponDefinition, userId: string): Promise<IssuanceRecord | null> {
    const doc = await this.models.Issuance.findOne({ couponId: new Types.ObjectId(coupon.id), userId, ...LIVE }).lean();
    return doc ? toIssuanceRecord(doc) : null;
  }

  protected async remaining(coupon: CouponDefinition): Promise<number> {
    return (await this.counter.stock(coupon)).remaining;
  }

  protected async giveBack(coupon: CouponDefinition): Promise<void> {
    await this.counters().updateOne({ _id: new Types.ObjectId(coupon.id) }, { $inc: { issuedCount: -1, stockVersion: 1 } });
    this.options.onStockChanged(coupon.id);
  }

  /** The lowest sequence in 1..totalQuantity no issuance holds (a rare path: after a collision). */
  protected async firstFreeSequence(coupon: CouponDefinition): Promise<number | undefined> {
    const docs = await this.models.Issuance.find({ couponId: new Types.ObjectId(coupon.id), ...LIVE }).select({ sequence: 1 }).sort({ sequence: 1 }).lean();
    let expected = 1;
    for (const { sequence } of docs) {
      if (sequence > expected) break;
      expected = sequence + 1;
    }
    return expected <= coupon.totalQuantity ? expected : undefined;
  }

  protected counters() {
    return this.counter.counters();
  }
}

/** CLAIM_STRATEGY=db-atomic: one conditional `$inc` on the coupon's counter decides each claim. */
export class DbAtomicClaims extends DbCounterClaims {
  protected async decide(couponId: string, userId: string): Promise<ClaimOutcome> {
    const coupon = await this.catalog.find(couponId);
    if (!coupon) throw notFound('coupon');
    const _id = new Types.ObjectId(coupon.id);
    // Same precedence as the Redis claim script: a holder hears ALREADY_ISSUED even after the end.
    const held = await this.heldBy(coupon, userId);
    if (held) return { status: 'ALREADY_ISSUED', issuance: held, remaining: await this.remaining(coupon) };
    const now = this.clock();
    if (now < coupon.startsAt) return { status: 'NOT_STARTED', issuance: null, remaining: await this.remaining(coupon) };
    if (coupon.endsAt && now >= coupon.endsAt) return { status: 'ENDED', issuance: null, remaining: await this.remaining(coupon) };

    // The decision: one document every claimant of the coupon writes, conditional on stock left.
    // `$not $gte` also matches a coupon whose counter was never written.
    const taken = await this.counters().findOneAndUpdate(
      { _id, issuedCount: { $not: { $gte: coupon.totalQuantity } } },
      { $inc: { issuedCount: 1, stockVersion: 1 } },
      { returnDocument: 'after', projection: { issuedCount: 1 } },
    );
    if (!taken) return { status: 'SOLD_OUT', issuance: null, remaining: 0 };
    this.options.onStockChanged(coupon.id);
    const remaining = remainingOf(coupon, taken);

    // The counter after our `$inc` is our sequence. (The embedded server can return a neighbour's
    // value under contention; the unique index catches that and the next free sequence is used.)
    let sequence = Math.min(taken.issuedCount ?? 1, coupon.totalQuantity);
    for (let attempt = 1; attempt <= MAX_INSERT_ATTEMPTS; attempt++) {
      const issuance: IssuanceRecord = { id: new Types.ObjectId().toHexString(), couponId: coupon.id, userId, sequence, issuedAt: now, status: 'ACTIVE' };
      try {
        await this.models.Issuance.insertOne({ _id: new Types.ObjectId(issuance.id), couponId: _id, userId, sequence, issuedAt: now, status: 'ACTIVE' });
        return { status: 'ISSUED', issuance, remaining };
      } catch (error) {
        const index = violatedIndex(error);
        if (index === 'one_per_user') {
          // The same user won a concurrent claim: that issuance stands and this unit goes back.
          await this.giveBack(coupon);
          const stored = await this.heldBy(coupon, userId);
          if (!stored) throw new Error(`issuance of ${userId} for ${coupon.id} reported duplicate but not found`);
          return { status: 'ALREADY_ISSUED', issuance: stored, remaining: remaining + 1 };
        }
        if (index !== 'one_per_sequence') throw error;
        const free = await this.firstFreeSequence(coupon);
        if (free === undefined) {
          // Every sequence is held: the counter ran behind MongoDB (a repair is due), so no stock is left.
          await this.giveBack(coupon);
          return { status: 'SOLD_OUT', issuance: null, remaining: 0 };
        }
        sequence = free;
      }
    }
    throw serviceUnavailable();
  }
}
