/**
 * MongoDB documents: coupon definitions and issuances, the durable record and final arbiter.
 * The unique indexes on (couponId, userId) and (couponId, sequence) are the last line of
 * defence: whatever Redis says, MongoDB can never hold a double issuance or an oversell.
 */
import { Connection, Schema, Types, type InferSchemaType, type Model } from 'mongoose';

const couponSchema = new Schema(
  {
    name: { type: String, required: true },
    totalQuantity: { type: Number, required: true },
    startsAt: { type: Date, required: true },
    endsAt: { type: Date, default: null },
  },
  { collection: 'coupons', timestamps: { createdAt: true, updatedAt: false }, autoCreate: false, autoIndex: false },
);

const issuanceSchema = new Schema(
  {
    couponId: { type: Schema.Types.ObjectId, required: true },
    userId: { type: String, required: true },
    sequence: { type: Number, required: true },
    issuedAt: { type: Date, required: true },
  },
  { collection: 'issuances', versionKey: false, autoCreate: false, autoIndex: false },
);
issuanceSchema.index({ couponId: 1, userId: 1 }, { unique: true, name: 'one_per_user' });
issuanceSchema.index({ couponId: 1, sequence: 1 }, { unique: true, name: 'one_per_sequence' });
issuanceSchema.index({ userId: 1, issuedAt: -1 }, { name: 'by_user' });

export type CouponDocument = InferSchemaType<typeof couponSchema> & { _id: Types.ObjectId };
export type IssuanceDocument = InferSchemaType<typeof issuanceSchema> & { _id: Types.ObjectId };

export interface Models {
  Coupon: Model<CouponDocument>;
  Issuance: Model<IssuanceDocument>;
}

export function registerModels(connection: Connection): Models {
  return {
    Coupon: connection.model<CouponDocument>('Coupon', couponSchema),
    Issuance: connection.model<IssuanceDocument>('Issuance', issuanceSchema),
  };
}

/** Creates the indexes explicitly at start-up: the guarantees depend on them existing. */
export async function ensureIndexes(models: Models): Promise<void> {
  await models.Coupon.createIndexes();
  await models.Issuance.createIndexes();
}

/** Server error code of a unique index violation. */
export const DUPLICATE_KEY = 11000;
