/**
 * The events' MongoDB documents, on a connection of their own (its own small pool), so that
 * deliveries, however many and however slow their receivers, never queue ahead of a claim's write.
 *
 * - `webhooks`: the registered receivers, with their secret.
 * - `webhook_deliveries`: one document per (webhook, event), `_id` = "<webhookId>:<eventId>".
 *   It holds the signed body's JSON (the same bytes on every attempt), the state (pending,
 *   delivered, failed), the attempt count, when to try next and who holds it (`leaseToken`,
 *   `leaseUntil`).
 * - `event_relay`: one document, the relay's lease (which instance fans events out).
 * The issuance and coupon documents carry the relay's markers (`evStage`, `evEndedFor`), written
 * with the driver's own collection methods, outside the claim path's mongoose schema.
 */
import { Schema, Types, type Connection, type Model } from 'mongoose';
import type { EventType } from './event-model';

const webhookSchema = new Schema(
  {
    url: { type: String, required: true },
    events: { type: [String], required: true },
    secret: { type: String, required: true },
    createdAt: { type: Date, required: true },
  },
  { collection: 'webhooks', versionKey: false, autoCreate: false, autoIndex: false },
);

export type DeliveryState = 'pending' | 'delivered' | 'failed';

const deliverySchema = new Schema(
  {
    _id: { type: String, required: true },
    webhookId: { type: Schema.Types.ObjectId, required: true },
    eventId: { type: String, required: true },
    type: { type: String, required: true },
    subject: { type: String, required: true },
    stage: { type: Number, required: true },
    occurredAt: { type: Date, required: true },
    body: { type: String, required: true },
    state: { type: String, required: true },
    attempts: { type: Number, required: true },
    nextAttemptAt: { type: Date, required: true },
    leaseUntil: { type: Date, required: true },
    leaseToken: { type: String, default: null },
    createdAt: { type: Date, required: true },
    deliveredAt: { type: Date, default: null },
    lastError: { type: String, default: null },
  },
  { collection: 'webhook_deliveries', versionKey: false, autoCreate: false, autoIndex: false },
);
deliverySchema.index({ webhookId: 1, state: 1, nextAttemptAt: 1 }, { name: 'due_by_webhook' });
deliverySchema.index({ state: 1, nextAttemptAt: 1 }, { name: 'due' });

const relaySchema = new Schema(
  {
    _id: { type: String, required: true },
    owner: { type: String, required: true },
    leaseUntil: { type: Date, required: true },
  },
  { collection: 'event_relay', versionKey: false, autoCreate: false, autoIndex: false },
);

export interface WebhookDocument {
  _id: Types.ObjectId;
  url: string;
  events: EventType[];
  secret: string;
  createdAt: Date;
}

export interface DeliveryDocument {
  _id: string;
  webhookId: Types.ObjectId;
  eventId: string;
  type: EventType;
  subject: string;
  stage: number;
  occurredAt: Date;
  body: string;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: Date;
  leaseUntil: Date;
  leaseToken: string | null;
  createdAt: Date;
  deliveredAt: Date | null;
  lastError: string | null;
}

export interface RelayLeaseDocument {
  _id: string;
  owner: string;
  leaseUntil: Date;
}

export interface EventModels {
  Webhook: Model<WebhookDocument>;
  Delivery: Model<DeliveryDocument>;
  RelayLease: Model<RelayLeaseDocument>;
}

export function registerEventModels(connection: Connection): EventModels {
  return {
    Webhook: connection.model<WebhookDocument>('Webhook', webhookSchema),
    Delivery: connection.model<DeliveryDocument>('WebhookDelivery', deliverySchema),
    RelayLease: connection.model<RelayLeaseDocument>('EventRelayLease', relaySchema),
  };
}

/** Issuances whose marker is behind their status: events the relay has still to publish (see event-relay.ts). */
export const UNPUBLISHED_ISSUANCES = { $or: [{ evStage: null }, { evStage: 1, status: { $in: ['REDEEMED', 'CANCELLED'] } }] };
/** Coupons whose total was lowered since the relay last looked for the sell-out it may have caused. */
export const LOWERED_UNEXAMINED = { evLoweredPending: true };

/** The relay finds unpublished issuances by their marker; see event-relay.ts. */
export const ISSUANCE_EVENTS_INDEX = { key: { evStage: 1, status: 1 }, name: 'events_unpublished' } as const;
/** The relay's sell-out check reads a coupon's latest issuance. */
export const ISSUANCES_BY_TIME_INDEX = { key: { couponId: 1, issuedAt: -1 }, name: 'events_by_coupon_time' } as const;
export const COUPON_ENDS_INDEX = { key: { evEndedFor: 1, endsAt: 1 }, name: 'events_unended' } as const;
/** The relay finds coupons whose total was lowered since it last looked (only those carry the field). */
export const COUPON_LOWERED_INDEX = { key: { evLoweredPending: 1 }, name: 'events_lowered', sparse: true } as const;

export async function ensureEventIndexes(models: EventModels, issuances: Model<any>, coupons: Model<any>): Promise<void> {
  await models.Webhook.createIndexes();
  await models.Delivery.createIndexes();
  await issuances.collection.createIndex(ISSUANCE_EVENTS_INDEX.key, { name: ISSUANCE_EVENTS_INDEX.name });
  await issuances.collection.createIndex(ISSUANCES_BY_TIME_INDEX.key, { name: ISSUANCES_BY_TIME_INDEX.name });
  await coupons.collection.createIndex(COUPON_ENDS_INDEX.key, { name: COUPON_ENDS_INDEX.name });
  await coupons.collection.createIndex(COUPON_LOWERED_INDEX.key, { name: COUPON_LOWERED_INDEX.name, sparse: COUPON_LOWERED_INDEX.sparse });
}

export const deliveryId = (webhookId: string, eventId: string) => `${webhookId}:${eventId}`;
