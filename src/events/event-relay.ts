/**
 * The relay turns stored changes into deliveries. It reads MongoDB, never a message queue: an
 * issuance whose marker (`evStage`) is behind its status, or a coupon past its end whose marker
 * (`evEndedFor`) is not its `endsAt`, has events to publish. For each, it writes one delivery
 * document per webhook that wants the event type and was registered when the event occurred,
 * then advances the marker. A relay killed between the two steps publishes the same events again
 * on its next pass, under the same ids, which the deliveries' unique _id keeps single.
 *
 * So nothing a client was told can lack its event (the change is in MongoDB before the answer,
 * and the change is the record), and no event exists for something MongoDB does not hold (events
 * are read from it). The claim path writes nothing more than it did.
 *
 * One instance relays at a time: it holds a lease in `event_relay` (renewed every pass, taken
 * over by another instance once it has expired). The lease only saves work; two relays at once
 * would still write each delivery once.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Types } from 'mongoose';
import type { Models } from '../mongo/models';
import { couponStatus } from '../coupons/coupon-model';
import {
  endedEventId,
  eventBody,
  loweredSoldOutEventId,
  loweringSellOuts,
  pendingIssuanceEvents,
  sellOuts,
  totalAt,
  soldOutEventId,
  stageOf,
  type CouponData,
  type EventType,
  type StoredIssuance,
  type WebhookEvent,
} from './event-model';
import { deliveryId, LOWERED_UNEXAMINED, UNPUBLISHED_ISSUANCES, type DeliveryDocument, type EventModels, type WebhookDocument } from './event-store';

const RELAY_LEASE_ID = 'relay';
/** Issuances read per batch; a pass reads batches until none is left or MAX_BATCHES. */
const BATCH = 500;
const MAX_BATCHES = 20;
/** A coupon whose endsAt was moved again within this long is checked for a new end. */
const RE_END_WINDOW_MS = 60_000;
const EPOCH = new Date(0);
/** While claims are busy: the longest a relay pass waits, and the batch it reads then. */
const YIELD_INTERVAL_MS = 2000;
const YIELD_BATCH = 100;

export interface RelayOptions {
  leaseMs: number;
  /** True while claims are busy: a pass then reads one small batch, at most every YIELD_INTERVAL_MS. */
  yieldToClaims?: () => boolean;
  /** Told after deliveries were written, so the local worker starts at once. */
  onPublished?: (count: number) => void;
}

interface StoredCoupon {
  _id: Types.ObjectId;
  name: string;
  totalQuantity: number;
  startsAt: Date;
  endsAt?: Date | null;
  redeemBy?: Date | null;
  evEndedFor?: Date | null;
  totalChanges?: Record<string, { at: Date; from: number; to: number }> | null;
  openingDrawMs?: number | null;
  drawCommitment?: string | null;
  drawSeed?: string | null;
  drawEntrants?: number | null;
}

export class EventRelay {
  readonly owner = randomUUID();

  constructor(
    private readonly models: Models,
    private readonly events: EventModels,
    private readonly logger: Logger,
    private readonly options: RelayOptions,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** One relay pass: publishes what is pending while this instance holds the lease. */
  private lastPass = 0;

  async pass(signal?: AbortSignal): Promise<number> {
    const yielding = this.options.yieldToClaims?.() ?? false;
    if (yielding && Date.now() - this.lastPass < YIELD_INTERVAL_MS) return 0;
    this.lastPass = Date.now();
    if (!(await this.holdLease())) return 0;
    const webhooks = await this.events.Webhook.find().lean<WebhookDocument[]>();
    let published = 0;
    const batch = yielding ? YIELD_BATCH : BATCH;
    for (let i = 0; i < (yielding ? 1 : MAX_BATCHES) && !signal?.aborted; i += 1) {
      const { read, written } = await this.publishIssuances(webhooks, batch);
      published += written;
      if (read < batch) break;
    }
    if (!signal?.aborted) published += await this.publishEnds(webhooks);
    if (!signal?.aborted) published += await this.publishLowerings(webhooks);
    if (published > 0) this.logger.debug({ published }, 'events published to webhook deliveries');
    return published;
  }

  /** Gives the lease up (graceful stop), so another instance takes over without waiting for it to expire. */
  async release(): Promise<void> {
    await this.events.RelayLease.updateOne({ _id: RELAY_LEASE_ID, owner: this.owner }, { $set: { leaseUntil: EPOCH } }).catch(() => undefined);
  }

  private async holdLease(): Promise<boolean> {
    const now = this.clock();
    try {
      const lease = await this.events.RelayLease.findOneAndUpdate(
        { _id: RELAY_LEASE_ID, $or: [{ owner: this.owner }, { leaseUntil: { $lte: now } }] },
        { $set: { owner: this.owner, leaseUntil: new Date(now.getTime() + this.options.leaseMs) } },
        { upsert: true, returnDocument: 'after' },
      ).lean();
      return lease?.owner === this.owner;
    } catch (error) {
      if (isDuplicateKeyError(error)) return false; // another instance holds it
      throw error;
    }
  }

  private async publishIssuances(webhooks: WebhookDocument[], batch: number): Promise<{ read: number; written: number }> {
    const docs = (await this.models.Issuance.collection
      .find(UNPUBLISHED_ISSUANCES)
      .limit(batch)
      .toArray()) as unknown as StoredIssuance[];
    if (docs.length === 0) return { read: 0, written: 0 };

    const deliveries: DeliveryDocument[] = [];
    const winsByCoupon = new Map<string, Set<string>>();
    for (const doc of docs) {
      for (const event of pendingIssuanceEvents(doc)) {
        deliveries.push(...fanOut(event, webhooks, this.clock()));
        if (event.type === 'ISSUANCE_ISSUED') {
          const couponId = doc.couponId.toHexString();
          const wins = winsByCoupon.get(couponId) ?? new Set<string>();
          winsByCoupon.set(couponId, wins.add(doc._id.toHexString()));
        }
      }
    }
    // A sell-out is published before the issuances that caused it are marked: a relay killed in
    // between checks again on its next pass.
    if (webhooks.some((w) => w.events.includes('COUPON_SOLD_OUT'))) {
      for (const [couponId, wins] of winsByCoupon) {
        for (const event of await this.soldOutEvents(couponId, wins)) deliveries.push(...fanOut(event, webhooks, this.clock()));
      }
    }
    const written = await this.insert(deliveries);
    await this.models.Issuance.collection.bulkWrite(
      docs.map((doc) => ({
        updateOne: {
          // Only if the document is still as it was read: a redeem or cancel since is published next pass.
          filter: { _id: doc._id as unknown as Types.ObjectId, evStage: doc.evStage ?? null, status: doc.status ?? null },
          update: { $set: { evStage: stageOf(doc) } },
        },
      })),
      { ordered: false },
    );
    return { read: docs.length, written };
  }

  /**
   * The sell-outs caused by `wins` (this batch's new issuances of the coupon), replayed over all
   * its issuances: a relay that runs behind still sees a sell-out that a cancel undid since, and
   * one batch can hold two sell-outs (sold out, a cancel, sold out again). A lowered total that
   * left no unit free is a sell-out too (loweringSellOuts): found here when this batch relays a win
   * it counts, and with `wins` 'all' by the pass over coupons whose total was lowered.
   */
  private async soldOutEvents(couponId: string, wins: ReadonlySet<string> | 'all'): Promise<WebhookEvent[]> {
    const _id = new Types.ObjectId(couponId);
    const coupon = (await this.models.Coupon.collection.findOne({ _id })) as unknown as StoredCoupon | null;
    if (!coupon) return [];
    const stored = await this.models.Issuance.collection.find({ couponId: _id }, { projection: { issuedAt: 1, cancelledAt: 1, lastUnit: 1 } }).toArray();
    const times = stored.map((doc) => ({ id: doc._id.toHexString(), issuedAt: doc.issuedAt as Date, cancelledAt: (doc.cancelledAt as Date | null) ?? null, lastUnit: doc.lastUnit === true }));
    const changes = Object.entries(coupon.totalChanges ?? {}).map(([key, change]) => ({ key, ...change }));
    const found = [
      ...(wins === 'all' ? [] : sellOuts(times, totalAt(coupon.totalQuantity, changes), wins)).map(({ at, cancelledBefore, totalQuantity }) => ({ id: soldOutEventId(couponId, totalQuantity, cancelledBefore), at, totalQuantity })),
      ...loweringSellOuts(times, changes, wins).map(({ at, key, totalQuantity }) => ({ id: loweredSoldOutEventId(couponId, key), at, totalQuantity })),
    ];
    if (found.length === 0) return [];
    const live = times.filter((t) => !t.cancelledAt).length;
    return found.map(({ id, at, totalQuantity }) => ({
      id,
      type: 'COUPON_SOLD_OUT' as const,
      occurredAt: at,
      subject: couponId,
      stage: 0,
      // The coupon as it is now, but the sell-out's figures: every unit issued.
      data: { coupon: { ...couponData(coupon, live, this.clock()), remaining: 0, totalQuantity, issuedCount: totalQuantity, status: couponStatus({ startsAt: coupon.startsAt, endsAt: coupon.endsAt ?? null }, 0, at) } },
    }));
  }

  private async publishEnds(webhooks: WebhookDocument[]): Promise<number> {
    const now = this.clock();
    const coupons = (await this.models.Coupon.collection
      .find({ endsAt: { $lte: now }, $or: [{ evEndedFor: null }, { endsAt: { $gt: new Date(now.getTime() - RE_END_WINDOW_MS) } }] })
      .limit(BATCH)
      .toArray()) as unknown as StoredCoupon[];
    const ended = coupons.filter((c) => c.endsAt && c.evEndedFor?.getTime() !== c.endsAt.getTime());
    if (ended.length === 0) return 0;
    const deliveries: DeliveryDocument[] = [];
    const wanted = webhooks.some((w) => w.events.includes('COUPON_ENDED'));
    for (const coupon of ended) {
      if (!wanted) continue;
      const live = await this.models.Issuance.countDocuments({ couponId: coupon._id, cancelKey: null });
      const couponId = coupon._id.toHexString();
      const event: WebhookEvent = {
        id: endedEventId(couponId, coupon.endsAt!),
        type: 'COUPON_ENDED',
        occurredAt: coupon.endsAt!,
        subject: couponId,
        stage: 0,
        data: { coupon: couponData(coupon, live, now) },
      };
      deliveries.push(...fanOut(event, webhooks, now));
    }
    const written = await this.insert(deliveries);
    await this.models.Coupon.collection.bulkWrite(
      ended.map((c) => ({ updateOne: { filter: { _id: c._id, endsAt: c.endsAt }, update: { $set: { evEndedFor: c.endsAt } } } })),
      { ordered: false },
    );
    return written;
  }

  /**
   * Coupons whose total was lowered since the relay last looked (`evLoweredPending`, set in the
   * same write as the change): a lowering onto the live issuances is a sell-out, and when every
   * win it counts was relayed before it, no issuance batch would see it. The marker is cleared only
   * if the coupon has not changed since it was read; a newer change is looked at on the next pass.
   */
  private async publishLowerings(webhooks: WebhookDocument[]): Promise<number> {
    const coupons = await this.models.Coupon.collection.find(LOWERED_UNEXAMINED, { projection: { _id: 1, revision: 1 } }).limit(BATCH).toArray();
    if (coupons.length === 0) return 0;
    const deliveries: DeliveryDocument[] = [];
    if (webhooks.some((w) => w.events.includes('COUPON_SOLD_OUT'))) {
      for (const coupon of coupons) {
        for (const event of await this.soldOutEvents(coupon._id.toHexString(), 'all')) deliveries.push(...fanOut(event, webhooks, this.clock()));
      }
    }
    const written = await this.insert(deliveries);
    await this.models.Coupon.collection.bulkWrite(
      coupons.map((c) => ({ updateOne: { filter: { _id: c._id, revision: c.revision }, update: { $unset: { evLoweredPending: '' } } } })),
      { ordered: false },
    );
    return written;
  }

  /**
   * Writes the deliveries; one already written (a pass repeated after a crash, an issuance
   * changed while it was being published) stays as it is. The embedded MongoDB-compatible server
   * stops an unordered insertMany at its first duplicate, so after one the rest go one by one.
   */
  private async insert(deliveries: DeliveryDocument[]): Promise<number> {
    if (deliveries.length === 0) return 0;
    let written = 0;
    try {
      await this.events.Delivery.collection.insertMany(deliveries as never[], { ordered: false });
      written = deliveries.length;
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      for (const delivery of deliveries) {
        try {
          await this.events.Delivery.collection.insertOne(delivery as never);
          written += 1;
        } catch (each) {
          if (!isDuplicateKeyError(each)) throw each;
        }
      }
    }
    if (written > 0) this.options.onPublished?.(written);
    return written;
  }
}

/** One delivery per webhook that wants the event and was registered when it occurred. */
export function fanOut(event: WebhookEvent, webhooks: Pick<WebhookDocument, '_id' | 'events' | 'createdAt'>[], now: Date): DeliveryDocument[] {
  const body = eventBody(event);
  return webhooks
    .filter((w) => w.events.includes(event.type as EventType) && w.createdAt <= event.occurredAt)
    .map((w) => ({
      _id: deliveryId(w._id.toHexString(), event.id),
      webhookId: w._id,
      eventId: event.id,
      type: event.type,
      subject: event.subject,
      stage: event.stage,
      occurredAt: event.occurredAt,
      body,
      state: 'pending',
      attempts: 0,
      nextAttemptAt: now,
      leaseUntil: EPOCH,
      leaseToken: null,
      createdAt: now,
      deliveredAt: null,
      lastError: null,
    }));
}

export function couponData(coupon: StoredCoupon, live: number, now: Date): CouponData {
  const remaining = Math.max(0, coupon.totalQuantity - live);
  const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
  return {
    id: coupon._id.toHexString(),
    name: coupon.name,
    totalQuantity: coupon.totalQuantity,
    remaining,
    issuedCount: live,
    status: couponStatus({ startsAt: coupon.startsAt, endsAt: coupon.endsAt ?? null }, remaining, now),
    startsAt: coupon.startsAt.toISOString(),
    endsAt: iso(coupon.endsAt),
    redeemBy: iso(coupon.redeemBy),
    // The opening draw's fields, as the draw stores them when it does (absent: first come, first served).
    openingDrawMs: coupon.openingDrawMs ?? 0,
    drawCommitment: coupon.drawCommitment ?? null,
    drawSeed: coupon.drawSeed ?? null,
    drawEntrants: coupon.drawEntrants ?? null,
  };
}

function isDuplicateKeyError(error: unknown): boolean {
  const e = error as { code?: number; writeErrors?: Array<{ code?: number }> } | null;
  if (e?.code === 11000) return true;
  return Array.isArray(e?.writeErrors) && e.writeErrors.length > 0 && e.writeErrors.every((w) => w.code === 11000);
}
