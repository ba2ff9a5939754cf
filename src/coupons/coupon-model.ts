/**
 * Plain data shapes passed between services and resolvers (the codegen mappers point here),
 * and the pure rules that derive a coupon's status.
 */

export interface CouponDefinition {
  id: string;
  name: string;
  totalQuantity: number;
  startsAt: Date;
  endsAt: Date | null;
  /** Issuances can be redeemed until then; null = no limit. */
  redeemBy: Date | null;
  /**
   * MongoDB's revision of the coupon, raised by every change (compare-and-set, see
   * coupon-admin.ts); the claim state keeps the one it holds. Absent where it is not known.
   */
  revision?: number;
  /** v3 opening draw (src/draw/): 0 or absent = first come, first served from startsAt. */
  openingDrawMs?: number;
  /** Hex SHA-256 of the draw's seed; set whenever a window was set. */
  drawCommitment?: string | null;
  /** The seed, public only once the draw is done (null before); never the secret copy. */
  drawSeed?: string | null;
  /** Distinct entrants; null until the draw is done. */
  drawEntrants?: number | null;
}

export type CouponStatus = 'SCHEDULED' | 'ACTIVE' | 'SOLD_OUT' | 'ENDED';

/** A coupon with its live stock, as the Coupon type resolves it. */
export interface CouponView extends CouponDefinition {
  remaining: number;
  status: CouponStatus;
}

export interface IssuanceRecord {
  id: string;
  couponId: string;
  userId: string;
  sequence: number;
  issuedAt: Date;
  status: IssuanceStatus;
  redeemedAt?: Date | null;
  orderId?: string | null;
  cancelledAt?: Date | null;
  /**
   * Built from the claim state (a Redis winner entry, the sold-out memory), which knows who won
   * but not what became of it since: status and the lifecycle fields are read from MongoDB when asked for.
   */
  lifecycleUnknown?: true;
  /**
   * This win took the coupon's last free unit, as the gate ordered it (the claim script answered
   * remaining 0, or the draw gave out every unit). Stored with the issuance so that COUPON_SOLD_OUT
   * follows the gate, which a raise or a lowering in flight can put apart from MongoDB's clocks.
   */
  lastUnit?: true;
}

export type IssuanceStatus = 'ACTIVE' | 'REDEEMED' | 'CANCELLED';

export interface StockSnapshot {
  couponId: string;
  remaining: number;
  totalQuantity: number;
  status: CouponStatus;
  /** When Redis loaded the coupon's state; a rebuild starts a newer epoch. */
  epoch: number;
  /** Grows with every change of the coupon's stock within an epoch. */
  version: number;
}

/** Whether `a` reflects a later state of the coupon than `b`. */
export function isNewerStock(a: Pick<StockSnapshot, 'epoch' | 'version'>, b: Pick<StockSnapshot, 'epoch' | 'version'>): boolean {
  return a.epoch > b.epoch || (a.epoch === b.epoch && a.version > b.version);
}

/** Same precedence as the claim script: not started, then ended, then sold out. */
export function couponStatus(coupon: Pick<CouponDefinition, 'startsAt' | 'endsAt'>, remaining: number, now: Date): CouponStatus {
  if (now < coupon.startsAt) return 'SCHEDULED';
  if (coupon.endsAt && now >= coupon.endsAt) return 'ENDED';
  if (remaining <= 0) return 'SOLD_OUT';
  return 'ACTIVE';
}

/** What a claim ended in: a business outcome, never an error. */
export type ClaimStatus = 'ISSUED' | 'ALREADY_ISSUED' | 'SOLD_OUT' | 'NOT_STARTED' | 'ENDED';

export interface ClaimOutcome {
  status: ClaimStatus;
  issuance: IssuanceRecord | null;
  remaining: number;
}
