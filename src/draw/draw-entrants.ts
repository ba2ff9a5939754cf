/**
 * The draw's entrants as MongoDB keeps them once the draw is done, in ranking order: the record
 * auditors read (GET /admin/coupons/{id}/draw.csv) and anyone can recompute with the seed. Its
 * own collection, registered on the service's connection by the draw (no other module reads it).
 */
import { Schema, Types, type Connection, type InferSchemaType, type Model } from 'mongoose';

const entrantSchema = new Schema(
  {
    couponId: { type: Schema.Types.ObjectId, required: true },
    /** 1 = the lowest rank key. */
    rank: { type: Number, required: true },
    userId: { type: String, required: true },
    rankKey: { type: String, required: true },
    won: { type: Boolean, required: true },
    /** The winner's sequence; null for the others. */
    sequence: { type: Number, default: null },
  },
  { collection: 'draw_entrants', versionKey: false, autoCreate: false, autoIndex: false },
);
entrantSchema.index({ couponId: 1, rank: 1 }, { unique: true, name: 'one_per_rank' });

export type DrawEntrantDocument = InferSchemaType<typeof entrantSchema> & { _id: Types.ObjectId };
export type DrawEntrantModel = Model<DrawEntrantDocument>;

export function drawEntrantModel(connection: Connection): DrawEntrantModel {
  return (connection.models.DrawEntrant as DrawEntrantModel | undefined) ?? connection.model<DrawEntrantDocument>('DrawEntrant', entrantSchema);
}
