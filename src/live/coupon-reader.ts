/**
 * Read side: a coupon with its live stock, and a user's own issuances from MongoDB.
 *
 * Reads are per request (`scope`, the request's context): the coupons one request asks for are
 * one batched definition read (DataLoader), and an issuance's lifecycle is read once per request,
 * never kept across requests (the sold-out memory hands the same issuance object to every claim,
 * and a redeem since must show). A coupon that has ENDED is never rebuilt in Redis for a read:
 * without its claim state, `remaining` is counted in MongoDB (totalQuantity minus its live
 * issuances), shared for a second per coupon. An operator's change is answered from MongoDB
 * alone (`stored`).
 */
import DataLoader from 'dataloader';
import { LRUCache } from 'lru-cache';
import { Types } from 'mongoose';
import type { Models } from '../mongo/models';
import { assertCouponId, type CouponCatalog } from '../coupons/coupon-catalog';
import type { CouponGate } from '../claims/coupon-gate';
import { couponStatus, type CouponDefinition, type CouponView, type IssuanceRecord, type StockSnapshot } from '../coupons/coupon-model';
import { toIssuanceRecord } from '../claims/issuance-writer';
import { LIVE } from '../mongo/models';

const MY_ISSUANCES_LIMIT = 1000;
/** An ended coupon's count of live issuances is shared this long (the contract's 1 s for stock). */
const ENDED_COUNT_TTL_MS = 1000;

/** What one request's reads are kept under: its context (any object that lives as long as the request). */
export type ReadScope = object;

interface ScopedReads {
  coupons: DataLoader<string, CouponDefinition | null>;
  lifecycles: Map<string, Promise<IssuanceRecord>>;
}

export class CouponReader {
  private readonly scopes = new WeakMap<ReadScope, ScopedReads>();
  private readonly endedCounts = new LRUCache<string, Promise<number>>({ max: 10_000, ttl: ENDED_COUNT_TTL_MS });
  constructor(
    private readonly catalog: CouponCatalog,
    /** The Redis gate, or the db strategies' counter when claims are decided in MongoDB. */
    private readonly gate: Pick<CouponGate, 'stock'>,
    private readonly models: Models,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /**
   * Null when no such coupon exists; malformed ids are BAD_USER_INPUT. With a `scope`, every
   * coupon the request asks for is looked up in one batch.
   */
  async coupon(id: string, scope?: ReadScope): Promise<CouponView | null> {
    assertCouponId(id);
    const definition = scope ? await this.reads(scope).coupons.load(id) : await this.catalog.find(id);
    return definition ? this.view(definition) : null;
  }

  private reads(scope: ReadScope): ScopedReads {
    let reads = this.scopes.get(scope);
    if (!reads) {
      reads = {
        // Per request, so nothing is cached across requests (the catalog has its own cache).
        coupons: new DataLoader((ids) => this.catalog.findMany(ids), { cache: true, maxBatchSize: 100 }),
        lifecycles: new Map(),
      };
      this.scopes.set(scope, reads);
    }
    return reads;
  }

  async view(definition: CouponDefinition): Promise<CouponView> {
    const stock = await this.snapshot(definition);
    return { ...definition, remaining: stock.remaining, status: stock.status };
  }

  async snapshot(definition: CouponDefinition): Promise<StockSnapshot> {
    const now = this.clock();
    const ended = definition.endsAt !== null && now >= definition.endsAt;
    // An ended coupon can no longer be claimed: its state is not rebuilt for a reader.
    let stock = await this.gate.stock(definition, { load: !ended });
    if (!stock.loaded) stock = { ...stock, remaining: definition.totalQuantity - (await this.liveCount(definition.id)) };
    return {
      couponId: definition.id,
      remaining: stock.remaining,
      totalQuantity: definition.totalQuantity,
      status: couponStatus(definition, stock.remaining, now),
      epoch: stock.epoch,
      version: stock.version,
    };
  }

  /**
   * The coupon as MongoDB holds it now, `remaining` counted there (totalQuantity minus its live
   * issuances, read fresh): the answer to an operator's change. MongoDB is the arbiter, and Redis
   * can be behind it for a while: a promoted replica may lack a cancel's returned unit, or a change
   * whose Redis write failed waits for the reconciler. Every ISSUED answer is already counted
   * there (a win is written before it is told); a win still in the group commit is not, so this
   * `remaining` can be above the gate's by those, never below what MongoDB leaves free.
   */
  async stored(definition: CouponDefinition): Promise<CouponView> {
    const live = await this.countLive(definition.id);
    const remaining = definition.totalQuantity - live;
    return { ...definition, remaining, status: couponStatus(definition, remaining, this.clock()) };
  }

  /** The coupon an issuance belongs to; issuances only exist for coupons that exist. */
  async couponOf(issuance: IssuanceRecord): Promise<CouponView> {
    const definition = await this.catalog.find(issuance.couponId);
    if (!definition) throw new Error(`issuance ${issuance.id} refers to missing coupon ${issuance.couponId}`);
    return this.view(definition);
  }

  private liveCount(couponId: string): Promise<number> {
    let count = this.endedCounts.get(couponId);
    if (!count) {
      count = this.countLive(couponId);
      this.endedCounts.set(couponId, count);
      count.catch(() => this.endedCounts.delete(couponId));
    }
    return count;
  }

  /** The coupon's issuances that are not CANCELLED, counted in MongoDB now. */
  private countLive(couponId: string): Promise<number> {
    return this.models.Issuance.countDocuments({ couponId: new Types.ObjectId(couponId), ...LIVE }).exec();
  }

  /**
   * The issuance as MongoDB holds it now, for one built from the claim state (`lifecycleUnknown`):
   * one read per issuance per request however many of its fields are asked for. A failed read is
   * not kept: the next field or request reads again.
   */
  lifecycle(issuance: IssuanceRecord, scope: ReadScope): Promise<IssuanceRecord> {
    if (!issuance.lifecycleUnknown) return Promise.resolve(issuance);
    const reads = this.reads(scope).lifecycles;
    let read = reads.get(issuance.id);
    if (!read) {
      read = this.models.Issuance.findById(new Types.ObjectId(issuance.id))
        .lean()
        .then((doc) => (doc ? toIssuanceRecord(doc) : issuance));
      reads.set(issuance.id, read);
      read.catch(() => reads.get(issuance.id) === read && reads.delete(issuance.id));
    }
    return read;
  }

  async issuancesOf(userId: string): Promise<IssuanceRecord[]> {
    const docs = await this.models.Issuance.find({ userId }).sort({ issuedAt: -1 }).limit(MY_ISSUANCES_LIMIT).lean();
    return docs.map(toIssuanceRecord);
  }
}
