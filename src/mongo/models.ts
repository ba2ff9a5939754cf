/**
 * MongoDB documents: coupon definitions, issuances and the audit trail, the durable record and
 * final arbiter. The unique indexes on (couponId, userId, cancelKey) and (couponId, sequence,
 * cancelKey) are the last line of defence: whatever Redis says, MongoDB can never hold two live
 * issuances of one user or of one sequence, nor (with the claim gate) an oversell.
 *
 * Cancelled issuances stay in the collection: a cancel sets `cancelKey` to the issuance's own id,
 * which takes it out of both unique indexes in the same single-document update, so its user and
 * its sequence are free again. A live issuance has no cancelKey (a missing field indexes as null),
 * so documents written before version 2, without status or cancelKey, count as live with no
 * migration, and so do those written by an instance of the previous version during a rolling
 * upgrade. (A partial index over `status: { $in: [ACTIVE, REDEEMED] }` would leave both
 * unprotected; the embedded server supports partial indexes, this is not a workaround.)
 */
import { Connection, Schema, Types, type InferSchemaType, type Model } from 'mongoose';

const couponSchema = new Schema(
  {
    name: { type: String, required: true },
    totalQuantity: { type: Number, required: true },
    startsAt: { type: Date, required: true },
    endsAt: { type: Date, default: null },
    redeemBy: { type: Date, default: null },
    /** Grows with every updateCoupon/endCoupon; instances compare it to drop stale cached definitions. */
    revision: { type: Number, default: 0 },
    /**
     * Every change of totalQuantity, written in the same update as the change: events judge a
     * sell-out by the total in force at the win, not by a total raised since (src/events/). Keyed
     * by the revision that made the change (`r<revision>`: { at, from, to }), so that the change sets
     * one field of its own (no array operator, which the embedded MongoDB-compatible server lacks).
     */
    totalChanges: { type: Schema.Types.Mixed, default: undefined },
    /** Set with a lowering of totalQuantity, cleared by the event relay once it has looked for the sell-out it may have caused. */
    evLoweredPending: { type: Boolean, default: undefined },
    // v3 opening draw (src/draw/). The secret seed is never read unless asked for by name
    // (`+drawSecret`), so no definition, answer or log line can carry it by accident.
    openingDrawMs: { type: Number, default: 0 },
    drawCommitment: { type: String, default: null },
    drawSecret: { type: String, default: null, select: false },
    /** The fencing token of the latest draw run that claimed the draw in MongoDB. */
    drawFence: { type: Number, default: 0 },
    /** false -> true exactly once: the arbiter of the draw's completion. */
    drawDone: { type: Boolean, default: false },
    /** The seed made public when the draw is done (null before). */
    drawSeed: { type: String, default: null },
    drawEntrants: { type: Number, default: null },
  },
  { collection: 'coupons', timestamps: { createdAt: true, updatedAt: false }, autoCreate: false, autoIndex: false },
);

const issuanceSchema = new Schema(
  {
    couponId: { type: Schema.Types.ObjectId, required: true },
    userId: { type: String, required: true },
    sequence: { type: Number, required: true },
    issuedAt: { type: Date, required: true },
    /** Absent on documents from before version 2: they are ACTIVE. */
    status: { type: String, enum: ['ACTIVE', 'REDEEMED', 'CANCELLED'] },
    redeemedAt: { type: Date },
    orderId: { type: String },
    cancelledAt: { type: Date },
    /** Present (true) on the win that took the last free unit, as the claim gate saw it (IssuanceRecord.lastUnit). */
    lastUnit: { type: Boolean },
    /** Absent while live; the issuance's own id once cancelled (out of the unique indexes). */
    cancelKey: { type: Schema.Types.ObjectId },
  },
  { collection: 'issuances', versionKey: false, autoCreate: false, autoIndex: false },
);
issuanceSchema.index({ couponId: 1, userId: 1, cancelKey: 1 }, { unique: true, name: 'one_live_per_user' });
issuanceSchema.index({ couponId: 1, sequence: 1, cancelKey: 1 }, { unique: true, name: 'one_live_per_sequence' });
issuanceSchema.index({ userId: 1, issuedAt: -1 }, { name: 'by_user' });

/** Matches the issuances that are not CANCELLED (a missing cancelKey matches null). */
export const LIVE = { cancelKey: null } as const;

/** Version 1's unique indexes, without cancelKey: they would refuse a re-claim after a cancel. */
const RETIRED_INDEXES = ['one_per_user', 'one_per_sequence'];

const auditSchema = new Schema(
  {
    at: { type: Date, required: true },
    action: { type: String, required: true },
    actorId: { type: String, required: true },
    actorIsAdmin: { type: Boolean, required: true },
    couponId: { type: Schema.Types.ObjectId, required: true },
    issuanceId: { type: Schema.Types.ObjectId, default: null },
    before: { type: String, default: null },
    after: { type: String, default: null },
  },
  { collection: 'audit_log', versionKey: false, autoCreate: false, autoIndex: false },
);
auditSchema.index({ couponId: 1, _id: -1 }, { name: 'by_coupon' });

export type CouponDocument = InferSchemaType<typeof couponSchema> & { _id: Types.ObjectId };
export type IssuanceDocument = InferSchemaType<typeof issuanceSchema> & { _id: Types.ObjectId };
export type AuditDocument = InferSchemaType<typeof auditSchema> & { _id: Types.ObjectId };

export interface Models {
  Coupon: Model<CouponDocument>;
  Issuance: Model<IssuanceDocument>;
  AuditEntry: Model<AuditDocument>;
}

export function registerModels(connection: Connection): Models {
  return {
    Coupon: connection.model<CouponDocument>('Coupon', couponSchema),
    Issuance: connection.model<IssuanceDocument>('Issuance', issuanceSchema),
    AuditEntry: connection.model<AuditDocument>('AuditEntry', auditSchema),
  };
}

/**
 * Creates the indexes explicitly at start-up: the guarantees depend on them existing. Version 1's
 * unique indexes are dropped once the new ones exist (a database that never had them, like the
 * embedded server's, which has no dropIndexes command, is not asked).
 */
export async function ensureIndexes(models: Models): Promise<void> {
  await models.Coupon.createIndexes();
  await models.Issuance.createIndexes();
  await models.AuditEntry.createIndexes();
  const existing = await models.Issuance.collection.listIndexes().toArray().catch(() => []);
  for (const index of existing) {
    if (RETIRED_INDEXES.includes(index.name as string)) await models.Issuance.collection.dropIndex(index.name as string);
  }
}

/** Server error code of a unique index violation. */
export const DUPLICATE_KEY = 11000;
