/**
 * Read side: a coupon with its live stock, and a user's own issuances from MongoDB.
 */
import { Types } from 'mongoose';
import type { Models } from '../mongo/models';
import { assertCouponId, type CouponCatalog } from '../coupons/coupon-catalog';
import type { CouponGate } from '../claims/coupon-gate';
import { couponStatus, type CouponDefinition, type CouponView, type IssuanceRecord, type StockSnapshot } from '../coupons/coupon-model';
import { toIssuanceRecord } from '../claims/issuance-writer';

const MY_ISSUANCES_LIMIT = 1000;

export class CouponReader {
  private readonly lifecycles = new WeakMap<IssuanceRecord, Promise<IssuanceRecord>>();
  constructor(
    private readonly catalog: CouponCatalog,
    /** The Redis gate, or the db strategies' counter when claims are decided in MongoDB. */
    private readonly gate: Pick<CouponGate, 'stock'>,
    private readonly models: Models,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Null when no such coupon exists; malformed ids are BAD_USER_INPUT. */
  async coupon(id: string): Promise<CouponView | null> {
    assertCouponId(id);
    const definition = await this.catalog.find(id);
    return definition ? this.view(definition) : null;
  }

  async view(definition: CouponDefinition): Promise<CouponView> {
    const stock = await this.snapshot(definition);
    return { ...definition, remaining: stock.remaining, status: stock.status };
  }

  async snapshot(definition: CouponDefinition): Promise<StockSnapshot> {
    const stock = await this.gate.stock(definition);
    return {
      couponId: definition.id,
      remaining: stock.remaining,
      totalQuantity: definition.totalQuantity,
      status: couponStatus(definition, stock.remaining, this.clock()),
      epoch: stock.epoch,
      version: stock.version,
    };
  }

  /** The coupon an issuance belongs to; issuances only exist for coupons that exist. */
  async couponOf(issuance: IssuanceRecord): Promise<CouponView> {
    const definition = await this.catalog.find(issuance.couponId);
    if (!definition) throw new Error(`issuance ${issuance.id} refers to missing coupon ${issuance.couponId}`);
    return this.view(definition);
  }

  /**
   * The issuance as MongoDB holds it now, for one built from the claim state (`lifecycleUnknown`):
   * one read per issuance however many of its fields are asked for.
   */
  lifecycle(issuance: IssuanceRecord): Promise<IssuanceRecord> {
    if (!issuance.lifecycleUnknown) return Promise.resolve(issuance);
    let read = this.lifecycles.get(issuance);
    if (!read) {
      read = this.models.Issuance.findById(new Types.ObjectId(issuance.id))
        .lean()
        .then((doc) => (doc ? toIssuanceRecord(doc) : issuance));
      this.lifecycles.set(issuance, read);
    }
    return read;
  }

  async issuancesOf(userId: string): Promise<IssuanceRecord[]> {
    const docs = await this.models.Issuance.find({ userId }).sort({ issuedAt: -1 }).limit(MY_ISSUANCES_LIMIT).lean();
    return docs.map(toIssuanceRecord);
  }
}
