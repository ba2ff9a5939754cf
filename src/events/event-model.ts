/**
 * What an event is and how it is derived from the stored documents: pure functions, no I/O.
 *
 * An issuance has at most two events, in this order: ISSUANCE_ISSUED, then one of
 * ISSUANCE_REDEEMED or ISSUANCE_CANCELLED (an issuance leaves ACTIVE once and never comes back).
 * The relay marks how far it has published an issuance in the issuance document itself
 * (`evStage`: missing = nothing, 1 = ISSUED, 2 = its final event), so the marker and the change it
 * follows live in one document, which MongoDB writes atomically.
 *
 * Event ids are derived from what the event is about, never drawn at random: publishing the same
 * event again (a relay killed between fan-out and marking) yields the same id and the same
 * delivery document, which the unique _id keeps single.
 */

export const EVENT_TYPES = ['ISSUANCE_ISSUED', 'ISSUANCE_REDEEMED', 'ISSUANCE_CANCELLED', 'COUPON_SOLD_OUT', 'COUPON_ENDED'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** The issuance fields an event carries (every Issuance field but `coupon`), as JSON. */
export interface IssuanceData {
  id: string;
  couponId: string;
  userId: string;
  sequence: number;
  issuedAt: string;
  status: 'ACTIVE' | 'REDEEMED' | 'CANCELLED';
  redeemedAt: string | null;
  orderId: string | null;
  cancelledAt: string | null;
}

/** Every Coupon field, as JSON, computed from MongoDB at the time the event is published. */
export interface CouponData {
  id: string;
  name: string;
  totalQuantity: number;
  remaining: number;
  issuedCount: number;
  status: 'SCHEDULED' | 'ACTIVE' | 'SOLD_OUT' | 'ENDED';
  startsAt: string;
  endsAt: string | null;
  redeemBy: string | null;
  openingDrawMs: number;
  drawCommitment: string | null;
  drawSeed: string | null;
  drawEntrants: number | null;
}

export interface WebhookEvent {
  id: string;
  type: EventType;
  occurredAt: Date;
  /** The issuance or coupon the event is about: an issuance's events are delivered in order. */
  subject: string;
  /** 1 for ISSUANCE_ISSUED, 2 for the event that ends an issuance, 0 for coupon events. */
  stage: 0 | 1 | 2;
  data: { issuance: IssuanceData } | { coupon: CouponData };
}

/** The raw issuance document, as the relay reads it (no mongoose casting). */
export interface StoredIssuance {
  _id: { toHexString(): string };
  couponId: { toHexString(): string };
  userId: string;
  sequence: number;
  issuedAt: Date;
  status?: string | null;
  redeemedAt?: Date | null;
  orderId?: string | null;
  cancelledAt?: Date | null;
  evStage?: number | null;
}

const iso = (date: Date | null | undefined) => (date ? date.toISOString() : null);

export const issuanceEventId = (issuanceId: string, type: 'ISSUANCE_ISSUED' | 'ISSUANCE_REDEEMED' | 'ISSUANCE_CANCELLED') =>
  `evt_${issuanceId}_${type === 'ISSUANCE_ISSUED' ? 'issued' : type === 'ISSUANCE_REDEEMED' ? 'redeemed' : 'cancelled'}`;

/** The stage an issuance document has reached: 1 while ACTIVE (or without a status), 2 once REDEEMED or CANCELLED. */
export function stageOf(doc: Pick<StoredIssuance, 'status'>): 1 | 2 {
  return doc.status === 'REDEEMED' || doc.status === 'CANCELLED' ? 2 : 1;
}

/**
 * The events of an issuance not published yet, oldest first. ISSUED carries the issuance as it
 * was issued (ACTIVE, no lifecycle fields), the final event the issuance as it is now.
 */
export function pendingIssuanceEvents(doc: StoredIssuance): WebhookEvent[] {
  const published = doc.evStage ?? 0;
  const id = doc._id.toHexString();
  const base: IssuanceData = {
    id,
    couponId: doc.couponId.toHexString(),
    userId: doc.userId,
    sequence: doc.sequence,
    issuedAt: doc.issuedAt.toISOString(),
    status: 'ACTIVE',
    redeemedAt: null,
    orderId: null,
    cancelledAt: null,
  };
  const events: WebhookEvent[] = [];
  if (published < 1) {
    events.push({ id: issuanceEventId(id, 'ISSUANCE_ISSUED'), type: 'ISSUANCE_ISSUED', occurredAt: doc.issuedAt, subject: id, stage: 1, data: { issuance: base } });
  }
  if (published < 2 && stageOf(doc) === 2) {
    const redeemed = doc.status === 'REDEEMED';
    const type = redeemed ? 'ISSUANCE_REDEEMED' : 'ISSUANCE_CANCELLED';
    const occurredAt = (redeemed ? doc.redeemedAt : doc.cancelledAt) ?? doc.issuedAt;
    const issuance: IssuanceData = redeemed
      ? { ...base, status: 'REDEEMED', redeemedAt: iso(doc.redeemedAt), orderId: doc.orderId ?? null }
      : { ...base, status: 'CANCELLED', cancelledAt: iso(doc.cancelledAt) };
    events.push({ id: issuanceEventId(id, type), type, occurredAt, subject: id, stage: 2, data: { issuance } });
  }
  return events;
}

/**
 * A sell-out is identified by the quantity and the number of cancels at the moment it happened:
 * a coupon sells out again only after a cancel returned a unit or its quantity changed, and
 * either makes a new id.
 */
/** An issuance as the sell-out timeline needs it. */
export interface IssuanceTimes {
  id: string;
  issuedAt: Date;
  cancelledAt?: Date | null;
  /** The gate answered this win with nothing remaining (IssuanceRecord.lastUnit). */
  lastUnit?: boolean;
}

/** The total in force at each moment, from the current total and the changes recorded with it. */
export function totalAt(current: number, changes: ReadonlyArray<{ at: Date; from: number; to: number }>): (at: number) => number {
  const sorted = [...changes].sort((a, b) => a.at.getTime() - b.at.getTime());
  return (at) => {
    const next = sorted.find((change) => change.at.getTime() > at);
    return next ? next.from : current;
  };
}

/**
 * The sell-outs a coupon went through, replayed from its issuances: each win that brought the live
 * issuances up to the total in force at that moment is one, identified by that total and by how
 * many cancels came before it (so a coupon that sells out again after a cancel or a raise has
 * another). Only those caused by a win in `wins` are returned: the ones a relay batch publishes.
 * A cancel at the same instant as a win counts before it. A win the gate answered with nothing
 * remaining (`lastUnit`) is a sell-out whatever the replay says.
 */
export function sellOuts(
  issuances: IssuanceTimes[],
  totalAt: (at: number) => number,
  wins: ReadonlySet<string>,
): Array<{ at: Date; cancelledBefore: number; totalQuantity: number }> {
  const steps: Array<{ at: number; cancel: boolean; id: string; lastUnit?: boolean }> = [];
  for (const issuance of issuances) {
    steps.push({ at: issuance.issuedAt.getTime(), cancel: false, id: issuance.id, lastUnit: issuance.lastUnit === true });
    if (issuance.cancelledAt) steps.push({ at: issuance.cancelledAt.getTime(), cancel: true, id: issuance.id });
  }
  steps.sort((a, b) => a.at - b.at || Number(b.cancel) - Number(a.cancel));
  const found: Array<{ at: Date; cancelledBefore: number; totalQuantity: number }> = [];
  let live = 0;
  let cancelled = 0;
  for (const step of steps) {
    if (step.cancel) {
      live -= 1;
      cancelled += 1;
      continue;
    }
    live += 1;
    const totalQuantity = totalAt(step.at);
    if (!wins.has(step.id)) continue;
    if (live >= totalQuantity) found.push({ at: new Date(step.at), cancelledBefore: cancelled, totalQuantity });
    // The gate sold out with this win although MongoDB's times say otherwise (a raise written to
    // MongoDB before Redis, or a lowering held in Redis before MongoDB): the gate's order stands.
    else if (step.lastUnit) found.push({ at: new Date(step.at), cancelledBefore: cancelled, totalQuantity: live });
  }
  return found;
}

/** A change of totalQuantity as stored with the coupon (`totalChanges.<key>`, the key naming its revision). */
export interface TotalChange {
  key: string;
  at: Date;
  from: number;
  to: number;
}

/**
 * The sell-outs caused by lowering the total: a lowering onto the live issuances at its moment
 * (updateCoupon can lower totalQuantity to issuedCount, never below) leaves no unit free, and is
 * a sell-out at the change's time. Returned when `wins` holds a win issued at or before the change
 * (the batch that writes the last of the units it counts sees them all), or for every such change
 * when `wins` is 'all' (a pass over the coupons whose total was lowered, for a lowering after the
 * last win was relayed). A win whose write is still pending when the change is first looked at is
 * counted by the batch that relays it.
 */
export function loweringSellOuts(
  issuances: IssuanceTimes[],
  changes: ReadonlyArray<TotalChange>,
  wins: ReadonlySet<string> | 'all',
): Array<{ at: Date; key: string; totalQuantity: number }> {
  const found: Array<{ at: Date; key: string; totalQuantity: number }> = [];
  for (const change of changes) {
    if (change.to >= change.from) continue;
    const at = change.at.getTime();
    // Live at the change: issued by then and not cancelled by then (a cancel at the same instant counts before).
    const counted = issuances.filter((i) => i.issuedAt.getTime() <= at && !(i.cancelledAt && i.cancelledAt.getTime() <= at));
    if (counted.length < change.to) continue;
    if (wins !== 'all' && !counted.some((i) => wins.has(i.id))) continue;
    found.push({ at: change.at, key: change.key, totalQuantity: change.to });
  }
  return found;
}

export const soldOutEventId = (couponId: string, totalQuantity: number, cancelled: number) => `evt_${couponId}_soldout_${totalQuantity}_${cancelled}`;

/** A sell-out by a lowered total is identified by the change (its revision), so it can never share a sell-out by a win's id. */
export const loweredSoldOutEventId = (couponId: string, changeKey: string) => `evt_${couponId}_soldout_lowered_${changeKey}`;

/** An end is identified by the endsAt it happened at: a coupon moved to a later end ends again. */
export const endedEventId = (couponId: string, endsAt: Date) => `evt_${couponId}_ended_${endsAt.getTime()}`;

/** The JSON body of a delivery: the same bytes on every attempt. */
export function eventBody(event: WebhookEvent): string {
  return JSON.stringify({ id: event.id, type: event.type, occurredAt: event.occurredAt.toISOString(), data: event.data });
}
