/**
 * Coupon definitions: created by operators, stored in MongoDB, cached in memory. A definition
 * never changes after creation, so the claim path can read it from the cache without MongoDB.
 */
import { isValidObjectId, Types } from 'mongoose';
import { badUserInput } from '../errors';
import type { Models, CouponDocument } from '../mongo/models';
import type { CouponDefinition } from './coupon-model';

export interface CreateCouponRequest {
  name: string;
  totalQuantity: number;
  startsAt?: Date | null;
  endsAt?: Date | null;
}

export const NAME_MAX = 200;
export const QUANTITY_MAX = 10_000_000;

/** Checks and normalises operator input; throws BAD_USER_INPUT naming the field. */
export function validateCreateCoupon(input: CreateCouponRequest, now: Date): Omit<CouponDefinition, 'id'> {
  const name = input.name.trim();
  if (name.length < 1 || name.length > NAME_MAX) throw badUserInput(`name must be 1 to ${NAME_MAX} characters after trimming`, 'name');
  if (!Number.isInteger(input.totalQuantity) || input.totalQuantity < 1 || input.totalQuantity > QUANTITY_MAX) {
    throw badUserInput(`totalQuantity must be an integer from 1 to ${QUANTITY_MAX}`, 'totalQuantity');
  }
  const startsAt = input.startsAt ?? now;
  const endsAt = input.endsAt ?? null;
  if (endsAt && endsAt <= startsAt) throw badUserInput('endsAt must be after startsAt', 'endsAt');
  return { name, totalQuantity: input.totalQuantity, startsAt, endsAt };
}

/** Coupon ids are MongoDB ObjectIds in their 24-hex-digit form. */
export function assertCouponId(id: string): void {
  if (!/^[0-9a-f]{24}$/i.test(id) || !isValidObjectId(id)) throw badUserInput('couponId is not a valid coupon id', 'couponId');
}

export function toDefinition(doc: Pick<CouponDocument, '_id' | 'name' | 'totalQuantity' | 'startsAt' | 'endsAt'>): CouponDefinition {
  return {
    id: doc._id.toHexString(),
    name: doc.name,
    totalQuantity: doc.totalQuantity,
    startsAt: doc.startsAt,
    endsAt: doc.endsAt ?? null,
  };
}

const MISSING_TTL_MS = 1000;
const RECENTLY_ENDED_MS = 24 * 60 * 60 * 1000;
const CACHE_LIMIT = 10_000;

export class CouponCatalog {
  private readonly known = new Map<string, CouponDefinition>();
  private readonly missing = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<CouponDefinition | null>>();

  constructor(
    private readonly models: Models,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async create(input: CreateCouponRequest): Promise<CouponDefinition> {
    const fields = validateCreateCoupon(input, this.clock());
    const doc = await this.models.Coupon.create(fields);
    const definition = toDefinition(doc);
    this.remember(definition);
    return definition;
  }

  /** The definition, or null when no such coupon exists. `id` must already be validated. */
  async find(id: string): Promise<CouponDefinition | null> {
    const cached = this.known.get(id);
    if (cached) return cached;
    const missingUntil = this.missing.get(id);
    if (missingUntil && missingUntil > Date.now()) return null;
    // One MongoDB read per id however many claims ask at once.
    let lookup = this.inFlight.get(id);
    if (!lookup) {
      lookup = this.load(id).finally(() => this.inFlight.delete(id));
      this.inFlight.set(id, lookup);
    }
    return lookup;
  }

  /** The definition when this instance holds it already; no MongoDB read. */
  cached(id: string): CouponDefinition | undefined {
    return this.known.get(id);
  }

  /**
   * Coupons without an end or ended within the last day, for background repair: a claim just
   * before the end may still have a reservation to settle.
   */
  async listRecentlyOpen(): Promise<CouponDefinition[]> {
    const since = new Date(this.clock().getTime() - RECENTLY_ENDED_MS);
    const docs = await this.models.Coupon.find({ $or: [{ endsAt: null }, { endsAt: { $gt: since } }] }).lean();
    return docs.map((doc) => {
      const definition = toDefinition(doc);
      this.remember(definition);
      return definition;
    });
  }

  private async load(id: string): Promise<CouponDefinition | null> {
    const doc = await this.models.Coupon.findById(new Types.ObjectId(id)).lean();
    if (!doc) {
      if (this.missing.size >= CACHE_LIMIT) this.missing.clear();
      this.missing.set(id, Date.now() + MISSING_TTL_MS);
      return null;
    }
    const definition = toDefinition(doc);
    this.remember(definition);
    return definition;
  }

  private remember(definition: CouponDefinition): void {
    if (this.known.size >= CACHE_LIMIT) this.known.delete(this.known.keys().next().value!);
    this.known.set(definition.id, definition);
    this.missing.delete(definition.id);
  }
}
