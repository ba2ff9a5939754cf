/**
 * Coupon definitions: created and changed by operators, stored in MongoDB, cached in memory so
 * the claim path reads them without MongoDB. The claim decision itself never depends on this
 * cache (the claim state in Redis holds the window and the quantity, see define-2.lua); what does
 * (NOT_STARTED and sold-out answers from memory, the status and totals shown) is kept fresh by
 * `DefinitionSync`: a change is announced to every instance at once, and the definitions of
 * coupons in use are re-validated against MongoDB every 500 ms in case a message was missed.
 * Every replaced or dropped definition is announced as a 'changed' event with the coupon id.
 */
import { EventEmitter } from 'node:events';
import { LRUCache } from 'lru-cache';
import { isValidObjectId, Types } from 'mongoose';
import { badUserInput } from '../errors';
import type { Models, CouponDocument } from '../mongo/models';
import type { CouponDefinition } from './coupon-model';
import { newDrawSeed, OPENING_DRAW_MAX_MS } from './opening-draw';

export interface CreateCouponRequest {
  name: string;
  totalQuantity: number;
  startsAt?: Date | null;
  endsAt?: Date | null;
  redeemBy?: Date | null;
  /** v3: 0..2000 ms; default 0. */
  openingDrawMs?: number | null;
}

/** updateCoupon's input: undefined = unchanged; null removes endsAt or redeemBy. */
export interface UpdateCouponRequest {
  name?: string | null;
  startsAt?: Date | null;
  endsAt?: Date | null;
  totalQuantity?: number | null;
  redeemBy?: Date | null;
  /** v3: only while the coupon is SCHEDULED. */
  openingDrawMs?: number | null;
}

export const NAME_MAX = 200;
export const QUANTITY_MAX = 10_000_000;

/** Checks and normalises operator input; throws BAD_USER_INPUT naming the field. */
export function validateCreateCoupon(input: CreateCouponRequest, now: Date): Omit<CouponDefinition, 'id'> {
  return checkDefinition({
    name: input.name,
    totalQuantity: input.totalQuantity,
    startsAt: input.startsAt ?? now,
    endsAt: input.endsAt ?? null,
    redeemBy: input.redeemBy ?? null,
    openingDrawMs: input.openingDrawMs ?? undefined,
  });
}

/**
 * The definition after an update, checked as a whole; throws BAD_USER_INPUT naming the field.
 * `issuedCount` (issuances that are not CANCELLED) bounds totalQuantity from below, and so does
 * `highestSequence` (the highest sequence among them): sequences are 1..totalQuantity.
 */
export function validateUpdateCoupon(current: CouponDefinition, input: UpdateCouponRequest, now: Date, issuedCount: number, highestSequence = 0): CouponDefinition {
  for (const field of ['name', 'startsAt', 'totalQuantity', 'openingDrawMs'] as const) {
    if (input[field] === null) throw badUserInput(`${field} cannot be removed`, field);
  }
  if (input.startsAt && now >= current.startsAt && input.startsAt.getTime() !== current.startsAt.getTime()) {
    throw badUserInput('startsAt can only change while the coupon is SCHEDULED', 'startsAt');
  }
  if (input.openingDrawMs != null && now >= current.startsAt && input.openingDrawMs !== (current.openingDrawMs ?? 0)) {
    throw badUserInput('openingDrawMs can only change while the coupon is SCHEDULED', 'openingDrawMs');
  }
  const next = checkDefinition({
    name: input.name ?? current.name,
    totalQuantity: input.totalQuantity ?? current.totalQuantity,
    startsAt: input.startsAt ?? current.startsAt,
    endsAt: input.endsAt === undefined ? current.endsAt : input.endsAt,
    redeemBy: input.redeemBy === undefined ? current.redeemBy : input.redeemBy,
    openingDrawMs: input.openingDrawMs ?? current.openingDrawMs,
  });
  if (next.totalQuantity < issuedCount) throw badUserInput(`totalQuantity cannot go below issuedCount (${issuedCount})`, 'totalQuantity');
  if (next.totalQuantity < highestSequence) throw badUserInput(belowSequence(highestSequence), 'totalQuantity');
  return { ...current, ...next, revision: current.revision };
}

/** Why a total below a live sequence is refused (sequences are 1..totalQuantity). */
export function belowSequence(highestSequence?: number): string {
  const which = highestSequence ? ` (${highestSequence})` : '';
  return `totalQuantity cannot go below the highest sequence of an issuance that is not CANCELLED${which}: sequences are 1..totalQuantity`;
}

function checkDefinition(fields: Omit<CouponDefinition, 'id'>): Omit<CouponDefinition, 'id'> {
  const name = fields.name.trim();
  if (name.length < 1 || name.length > NAME_MAX) throw badUserInput(`name must be 1 to ${NAME_MAX} characters after trimming`, 'name');
  if (!Number.isInteger(fields.totalQuantity) || fields.totalQuantity < 1 || fields.totalQuantity > QUANTITY_MAX) {
    throw badUserInput(`totalQuantity must be an integer from 1 to ${QUANTITY_MAX}`, 'totalQuantity');
  }
  const { startsAt, endsAt, redeemBy } = fields;
  if (endsAt && endsAt <= startsAt) throw badUserInput('endsAt must be after startsAt', 'endsAt');
  if (redeemBy && redeemBy <= startsAt) throw badUserInput('redeemBy must be after startsAt', 'redeemBy');
  const checked = { name, totalQuantity: fields.totalQuantity, startsAt, endsAt, redeemBy };
  const openingDrawMs = fields.openingDrawMs;
  if (openingDrawMs === undefined) return checked;
  if (!Number.isInteger(openingDrawMs) || openingDrawMs < 0 || openingDrawMs > OPENING_DRAW_MAX_MS) {
    throw badUserInput(`openingDrawMs must be an integer from 0 to ${OPENING_DRAW_MAX_MS}`, 'openingDrawMs');
  }
  return { ...checked, openingDrawMs };
}

/** Coupon ids are MongoDB ObjectIds in their 24-hex-digit form. */
export function assertCouponId(id: string): void {
  if (!/^[0-9a-f]{24}$/i.test(id) || !isValidObjectId(id)) throw badUserInput('couponId is not a valid coupon id', 'couponId');
}

type DrawFields = Partial<Pick<CouponDocument, 'openingDrawMs' | 'drawCommitment' | 'drawSeed' | 'drawEntrants'>>;

export function toDefinition(
  doc: Pick<CouponDocument, '_id' | 'name' | 'totalQuantity' | 'startsAt' | 'endsAt'> & { redeemBy?: Date | null; revision?: number | null } & DrawFields,
): CouponDefinition {
  return {
    id: doc._id.toHexString(),
    name: doc.name,
    totalQuantity: doc.totalQuantity,
    startsAt: doc.startsAt,
    endsAt: doc.endsAt ?? null,
    redeemBy: doc.redeemBy ?? null,
    revision: doc.revision ?? 0,
    // v3 opening draw: the public fields only (the secret seed is never selected by default).
    openingDrawMs: doc.openingDrawMs ?? 0,
    drawCommitment: doc.drawCommitment ?? null,
    drawSeed: doc.drawSeed ?? null,
    drawEntrants: doc.drawEntrants ?? null,
  };
}

/** The fields an admin change may set. */
export const DEFINITION_FIELDS = ['name', 'totalQuantity', 'startsAt', 'endsAt', 'redeemBy', 'openingDrawMs'] as const;

/** The fields of `next` that differ from `current`, as a MongoDB `$set`. */
export function changedFields(current: CouponDefinition, next: CouponDefinition): Partial<Omit<CouponDefinition, 'id'>> {
  const shown = (value: unknown) => (value instanceof Date ? value.getTime() : value);
  const changed: Record<string, unknown> = {};
  for (const field of DEFINITION_FIELDS) if (shown(current[field]) !== shown(next[field])) changed[field] = next[field];
  return changed as Partial<Omit<CouponDefinition, 'id'>>;
}

/**
 * How long an id MongoDB does not hold is answered null without asking again. Ids are made by
 * the server, so nobody asks for one before it exists; `create` forgets it on this instance at
 * once, and another instance learns within this long.
 */
const MISSING_TTL_MS = 1000;
/** Unknown ids remembered at most (lru-cache: bounded, oldest first out, no sweep). */
const MISSING_LIMIT = 50_000;
const RECENTLY_ENDED_MS = 24 * 60 * 60 * 1000;
const CACHE_LIMIT = 10_000;

/** Whether two definitions differ in anything a claim or a reader sees. */
export function sameDefinition(a: CouponDefinition, b: CouponDefinition): boolean {
  const time = (d: Date | null) => d?.getTime() ?? null;
  return (
    a.name === b.name &&
    a.totalQuantity === b.totalQuantity &&
    time(a.startsAt) === time(b.startsAt) &&
    time(a.endsAt) === time(b.endsAt) &&
    time(a.redeemBy) === time(b.redeemBy) &&
    (a.openingDrawMs ?? 0) === (b.openingDrawMs ?? 0) &&
    (a.drawCommitment ?? null) === (b.drawCommitment ?? null) &&
    (a.drawSeed ?? null) === (b.drawSeed ?? null) &&
    (a.drawEntrants ?? null) === (b.drawEntrants ?? null)
  );
}

export class CouponCatalog extends EventEmitter<{ changed: [couponId: string] }> {
  private readonly known = new Map<string, CouponDefinition>();
  /** When each cached definition was last asked for: the ones in use are re-validated. */
  private readonly usedAt = new Map<string, number>();
  private readonly missing = new LRUCache<string, true>({ max: MISSING_LIMIT, ttl: MISSING_TTL_MS, ttlAutopurge: false });
  private readonly inFlight = new Map<string, Promise<CouponDefinition | null>>();

  constructor(
    private readonly models: Models,
    private readonly clock: () => Date = () => new Date(),
  ) {
    super();
  }

  async create(input: CreateCouponRequest): Promise<CouponDefinition> {
    const fields = validateCreateCoupon(input, this.clock());
    // v3: a draw's seed is fixed when its window is set, its commitment public from then on.
    const draw = fields.openingDrawMs ? newDrawSeed() : undefined;
    const doc = await this.models.Coupon.create(draw ? { ...fields, drawSecret: draw.seed, drawCommitment: draw.commitment } : fields);
    const definition = toDefinition(doc);
    this.remember(definition);
    return definition;
  }

  /**
   * Stores a change in MongoDB (the source of truth and the arbiter of concurrent changes): only
   * the fields that differ from `current`, and only if the coupon is still at `current`'s
   * revision, which goes up by one. 'conflict' when another change got there first (the caller
   * re-reads), null when the coupon is gone.
   */
  async save(current: CouponDefinition, next: CouponDefinition): Promise<CouponDefinition | 'conflict' | null> {
    const revision = current.revision ?? 0;
    const _id = new Types.ObjectId(current.id);
    if ((next.openingDrawMs ?? 0) > 0) {
      // v3: the first window set fixes the seed; a seed once committed to is never replaced.
      const draw = newDrawSeed();
      await this.models.Coupon.updateOne({ _id, drawCommitment: null }, { $set: { drawSecret: draw.seed, drawCommitment: draw.commitment } });
    }
    // Coupons stored before revisions existed have none: they are at revision 0.
    const doc = await this.models.Coupon.findOneAndUpdate(
      { _id, revision: revision === 0 ? { $in: [0, null] } : revision },
      {
        $set: {
          ...changedFields(current, next),
          revision: revision + 1,
          ...(next.totalQuantity !== current.totalQuantity ? { [`totalChanges.r${revision + 1}`]: { at: new Date(), from: current.totalQuantity, to: next.totalQuantity } } : {}),
          // A lowering may have sold the coupon out: the event relay looks (src/events/event-relay.ts).
          ...(next.totalQuantity < current.totalQuantity ? { evLoweredPending: true } : {}),
        },
      },
      { returnDocument: 'after' },
    ).lean();
    if (!doc) return (await this.models.Coupon.exists({ _id })) ? 'conflict' : null;
    const saved = toDefinition(doc);
    this.replace(saved);
    return saved;
  }

  /** The definition, or null when no such coupon exists. `id` must already be validated. */
  async find(id: string): Promise<CouponDefinition | null> {
    const cached = this.known.get(id);
    if (cached) {
      this.usedAt.set(id, Date.now());
      return cached;
    }
    if (this.missing.get(id)) return null;
    // One MongoDB read per id however many claims ask at once.
    let lookup = this.inFlight.get(id);
    if (!lookup) {
      lookup = this.load(id).finally(() => this.inFlight.delete(id));
      this.inFlight.set(id, lookup);
    }
    return lookup;
  }

  /**
   * Several definitions at once (a page asking for many coupons): cached and known-missing ids
   * cost nothing, the rest one MongoDB read together. Ids must already be validated.
   */
  async findMany(ids: readonly string[]): Promise<Array<CouponDefinition | null>> {
    const unknown = [...new Set(ids.filter((id) => !this.known.has(id) && !this.missing.get(id) && !this.inFlight.has(id)))];
    if (unknown.length > 1) {
      const read = this.models.Coupon.find({ _id: { $in: unknown.map((id) => new Types.ObjectId(id)) } })
        .lean()
        .then((docs) => {
          const found = new Map(docs.map((doc) => [doc._id.toHexString(), toDefinition(doc)]));
          for (const id of unknown) {
            const definition = found.get(id);
            if (definition) this.remember(definition);
            else this.missing.set(id, true);
          }
        });
      // Single lookups of the same ids wait for this read instead of making their own.
      for (const id of unknown) {
        const lookup = read.then(() => this.known.get(id) ?? null).finally(() => this.inFlight.delete(id));
        this.inFlight.set(id, lookup);
      }
    }
    return Promise.all(ids.map((id) => this.find(id)));
  }

  /** The definition when this instance holds it already; no MongoDB read. */
  cached(id: string): CouponDefinition | undefined {
    const cached = this.known.get(id);
    if (cached) this.usedAt.set(id, Date.now());
    return cached;
  }

  /** Read from MongoDB now, bypassing the cache (and refreshing it): for changes and redeems. */
  async fresh(id: string): Promise<CouponDefinition | null> {
    const doc = await this.models.Coupon.findById(new Types.ObjectId(id)).lean();
    if (!doc) return null;
    const definition = toDefinition(doc);
    this.replace(definition);
    return definition;
  }

  /** A definition as MongoDB now holds it: cached, and announced when it differs from the cached one. */
  replace(definition: CouponDefinition): void {
    const before = this.known.get(definition.id);
    // A read that started before a change may finish after it: never go back a revision.
    if (before && (before.revision ?? -1) > (definition.revision ?? -1)) return;
    this.remember(definition);
    if (!before || !sameDefinition(before, definition)) this.emit('changed', definition.id);
  }

  /** Another instance changed the coupon: the next use reads it from MongoDB again. */
  drop(id: string): void {
    if (this.known.delete(id)) this.emit('changed', id);
    this.usedAt.delete(id);
  }

  /** Ids of cached definitions asked for within `withinMs`. */
  inUse(withinMs: number): string[] {
    const since = Date.now() - withinMs;
    return [...this.usedAt].filter(([id, at]) => at >= since && this.known.has(id)).map(([id]) => id);
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
      this.replace(definition);
      return definition;
    });
  }

  private async load(id: string): Promise<CouponDefinition | null> {
    const doc = await this.models.Coupon.findById(new Types.ObjectId(id)).lean();
    if (!doc) {
      this.missing.set(id, true);
      return null;
    }
    const definition = toDefinition(doc);
    this.remember(definition);
    return definition;
  }

  private remember(definition: CouponDefinition): void {
    if (!this.known.has(definition.id) && this.known.size >= CACHE_LIMIT) {
      const oldest = this.known.keys().next().value!;
      this.known.delete(oldest);
      this.usedAt.delete(oldest);
    }
    this.known.set(definition.id, definition);
    this.missing.delete(definition.id);
  }
}
