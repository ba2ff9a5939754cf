/**
 * The claim: decided in Redis in one round trip, made durable in MongoDB (group commit)
 * before the client hears ISSUED. Disagreements between Redis and MongoDB are settled in
 * MongoDB's favour here, so a confused Redis can cost a retry but never a false answer.
 */
import { Types } from 'mongoose';
import type { Logger } from 'pino';
import { notFound, serviceUnavailable, toClientError, withDeadline } from '../errors';
import type { WinnerEntry } from '../redis/scripts';
import { assertCouponId, type CouponCatalog } from '../coupons/coupon-catalog';
import type { CouponGate } from './coupon-gate';
import type { ClaimOutcome, CouponDefinition, IssuanceRecord } from '../coupons/coupon-model';
import type { IssuanceWriter } from './issuance-writer';
import type { ClaimRateLimiter } from '../access/rate-limiter';
import type { SoldOutMemory } from './sold-out-memory';

/**
 * What claimCoupon needs, whichever strategy decides it: ClaimService (the Redis gate) or
 * DbLockClaims / DbAtomicClaims (MongoDB alone, CLAIM_STRATEGY=db-lock or db-atomic, for load comparison only).
 */
export interface ClaimPort {
  /** `onHeld` is called when the claim starts waiting for an opening draw (nothing to do until then). */
  claim(couponId: string, userId: string, clientIp: string, onHeld?: () => void): Promise<ClaimOutcome>;
}

/**
 * v3 opening draw (implemented in src/draw/, wired by the composition root): while a coupon's
 * draw is not done, its claims are entries (held until the draw) or wait for the draw's result.
 */
export interface OpeningDrawPort {
  /** From this instance's memory, no I/O: false when the coupon surely has no draw still to run. */
  mayHold(couponId: string): boolean;
  /** The budget of a claim that may be held (the window, then the draw), inside the request's own. */
  readonly heldDeadlineMs: number;
  /**
   * Decides a claim of a coupon that may have a draw; `firstComeFirstServed` is the usual decision.
   * Calls `onHeld` once the claim is held (entered, or waiting for the draw to be applied).
   */
  decide(couponId: string, userId: string, firstComeFirstServed: () => Promise<ClaimOutcome>, onHeld?: () => void): Promise<ClaimOutcome>;
}

/** What making a winner durable ended in. */
export type Settlement =
  | { kind: 'durable'; issuance: IssuanceRecord }
  /** The user already held another issuance in MongoDB; that one stands, the sequence went back. */
  | { kind: 'adopted'; issuance: IssuanceRecord }
  /** The sequence belonged to someone else in MongoDB; the reservation was dropped. */
  | { kind: 'revoked' }
  /**
   * The issuance was written and then cancelled while Redis could not hear of it: the
   * reservation went as a cancel's does (entry and pending mark dropped, unit back to stock).
   */
  | { kind: 'cancelled' };

/** How long a remembered winner's check against MongoDB may take before the memory answers alone. */
const HOLDER_CHECK_MS = 500;

/** Redis can hand out a taken sequence only right after a rebuild; a few retries always clear it. */
const MAX_ATTEMPTS = 5;

export interface ClaimServiceOptions {
  deadlineMs: number;
  /** `remaining`: the stock the change left, when known (0 is published at once). */
  onStockChanged: (couponId: string, remaining?: number) => void;
  /** Called once per claim with its status, or the error code it failed with. */
  onClaim?: (outcome: string, seconds: number) => void;
  /** Counted before the claim script, so a refused claim costs no coupon work. */
  rateLimiter?: ClaimRateLimiter;
  /** Called for each claim answered from memory, with no Redis command. */
  onAnsweredFromMemory?: () => void;
  /** v3: the opening draw, for coupons with openingDrawMs > 0. */
  openingDraw?: OpeningDrawPort;
  /** While active, Redis may have lost acknowledged wins: its SOLD_OUT and ENDED are checked in MongoDB (redis-doubt.ts). */
  redisDoubt?: { readonly active: boolean };
  /**
   * While Redis is in doubt, reconciles a coupon whose claim Redis answered SOLD_OUT (Reconciler#checkNow):
   * true when its state was changed to MongoDB's (a lost raise or returned unit), and the claim runs again.
   */
  recheckSoldOut?: (coupon: CouponDefinition) => Promise<boolean>;
}

/**
 * What every claim strategy does around its decision: the id check, the rate limit, the
 * deadline, the metrics, and the mapping of failures to the contract's codes (the cause is kept
 * as originalError for the logs).
 */
export async function guardedClaim(
  options: ClaimServiceOptions,
  request: { couponId: string; userId: string; clientIp: string },
  decide: () => Promise<ClaimOutcome>,
  /**
   * An answer known without asking anyone (sold out, not started): before the rate limit, which
   * protects the coupon's stock and the stores, neither of which such an answer touches.
   */
  known?: () => ClaimOutcome | Promise<ClaimOutcome | undefined> | undefined,
): Promise<ClaimOutcome> {
  const started = performance.now();
  try {
    assertCouponId(request.couponId);
    let answer = known?.();
    if (answer instanceof Promise) answer = await answer;
    if (answer) {
      options.onAnsweredFromMemory?.();
      options.onClaim?.(answer.status, (performance.now() - started) / 1000);
      return answer;
    }
    await options.rateLimiter?.consume(request);
    const outcome = await withDeadline(decide(), options.deadlineMs, 'claim');
    options.onClaim?.(outcome.status, (performance.now() - started) / 1000);
    return outcome;
  } catch (error) {
    const clientError = toClientError(error);
    options.onClaim?.(String(clientError.extensions.code), (performance.now() - started) / 1000);
    throw clientError === error ? error : Object.assign(clientError, { originalError: error });
  }
}

/** A win as Redis holds it: new wins are ACTIVE; for earlier ones (`earlier`), MongoDB knows what became of it. */
export function toIssuance(couponId: string, userId: string, winner: WinnerEntry, earlier = false): IssuanceRecord {
  const record: IssuanceRecord = { id: winner.issuanceId, couponId, userId, sequence: winner.sequence, issuedAt: new Date(winner.issuedAtMs), status: 'ACTIVE' };
  if (earlier) record.lifecycleUnknown = true;
  return record;
}

export class ClaimService {
  constructor(
    private readonly catalog: CouponCatalog,
    private readonly gate: CouponGate,
    private readonly writer: IssuanceWriter,
    private readonly logger: Logger,
    private readonly options: ClaimServiceOptions,
    private readonly soldOut?: SoldOutMemory,
    private readonly clock: () => number = Date.now,
  ) {}

  claim(couponId: string, userId: string, clientIp: string, onHeld?: () => void): Promise<ClaimOutcome> {
    // v3 opening draw: a coupon whose draw is not done yet decides through it (src/draw/).
    const draw = this.options.openingDraw;
    if (draw?.mayHold(couponId)) {
      return guardedClaim(
        { ...this.options, deadlineMs: draw.heldDeadlineMs },
        { couponId, userId, clientIp },
        () => draw.decide(couponId, userId, () => this.decideAndPersist(couponId, userId), onHeld),
        () => this.fromMemory(couponId, userId),
      );
    }
    return guardedClaim(
      this.options,
      { couponId, userId, clientIp },
      () => this.decideAndPersist(couponId, userId),
      () => this.fromMemory(couponId, userId),
    );
  }

  /** What the claim script would answer, when this instance already knows it. */
  private fromMemory(couponId: string, userId: string): ClaimOutcome | Promise<ClaimOutcome | undefined> | undefined {
    const remembered = this.soldOut?.answer(couponId, userId);
    if (remembered?.issuance) return this.stillHeld(couponId, remembered.issuance.id, remembered);
    if (remembered) return remembered;
    // Before its start nobody can hold a coupon, and all of its stock is there.
    const coupon = this.catalog.cached(couponId);
    if (coupon && this.clock() < coupon.startsAt.getTime()) return { status: 'NOT_STARTED', issuance: null, remaining: coupon.totalQuantity };
    return undefined;
  }

  /**
   * A remembered winner's ALREADY_ISSUED, checked against MongoDB by id: a cancel on another
   * instance writes MongoDB before the memories hear of it, and ALREADY_ISSUED is only ever a live
   * issuance. Cancelled (or gone): the coupon is forgotten here and the claim goes to Redis like any
   * other. MongoDB not answering within a moment: the remembered answer stands, since a cancel
   * cannot be acknowledged without MongoDB. Only winners pay this read; sold-out claims do not.
   */
  private async stillHeld(couponId: string, issuanceId: string, remembered: ClaimOutcome): Promise<ClaimOutcome | undefined> {
    let stored: IssuanceRecord | null;
    try {
      stored = await withDeadline(this.writer.stored(issuanceId), HOLDER_CHECK_MS, 'holder check');
    } catch {
      return remembered;
    }
    if (stored && stored.status !== 'CANCELLED') return { ...remembered, issuance: stored };
    this.soldOut?.forget(couponId);
    return undefined;
  }

  /**
   * Writes a Redis winner to MongoDB and settles any disagreement; used by claims and the sweeper.
   * `lastUnit`: the claim script answered this win with nothing remaining (stored for the events).
   */
  async settle(coupon: CouponDefinition, userId: string, winner: WinnerEntry, lastUnit = false): Promise<Settlement> {
    const issuance = toIssuance(coupon.id, userId, winner);
    if (lastUnit) issuance.lastUnit = true;
    const outcome = await this.writer.write(issuance);
    switch (outcome.kind) {
      case 'written': {
        // Stored before (its confirmation lost with Redis): answered as MongoDB holds it, a redeem since included.
        const durable = outcome.stored ?? issuance;
        this.gate.confirm(coupon.id, [{ userId, issuanceId: issuance.id }]).catch((error: Error) =>
          // The sweeper finds the mark again and confirms it then; nothing is lost.
          this.logger.warn({ couponId: coupon.id, err: error.message }, 'could not clear pending mark'),
        );
        // MongoDB holds it: a sold-out coupon waiting for this winner can be answered from memory.
        this.soldOut?.durable(coupon.id, userId, durable);
        return { kind: 'durable', issuance: durable };
      }
      case 'user-holds': {
        const stored = outcome.stored;
        await this.gate.adopt(coupon.id, userId, winner, { sequence: stored.sequence, issuedAtMs: stored.issuedAt.getTime(), issuanceId: stored.id });
        this.soldOut?.forget(coupon.id);
        this.logger.warn({ couponId: coupon.id, userId, sequence: winner.sequence }, 'redis reservation for a user who already held an issuance; adopted the stored one');
        this.options.onStockChanged(coupon.id);
        return { kind: 'adopted', issuance: stored };
      }
      case 'sequence-taken': {
        const holder = outcome.holder;
        await this.gate.revoke(coupon.id, userId, winner.issuanceId, holder.userId, {
          sequence: holder.sequence,
          issuedAtMs: holder.issuedAt.getTime(),
          issuanceId: holder.id,
        });
        this.soldOut?.forget(coupon.id);
        this.logger.warn({ couponId: coupon.id, userId, sequence: winner.sequence }, 'redis handed out a sequence mongodb already holds; reservation dropped');
        this.options.onStockChanged(coupon.id);
        return { kind: 'revoked' };
      }
      case 'cancelled': {
        // Not re-inserted (the _id is taken, and the user gave it up): settled as the cancel
        // would have been, had Redis heard it. A repeated settle finds the entry gone and does nothing.
        await this.gate.cancel(coupon.id, userId, winner.issuanceId, winner.sequence);
        this.soldOut?.forget(coupon.id);
        this.logger.warn({ couponId: coupon.id, userId, sequence: winner.sequence }, 'reservation whose issuance was cancelled meanwhile; dropped it as the cancel would have');
        this.options.onStockChanged(coupon.id);
        return { kind: 'cancelled' };
      }
    }
  }

  private async decideAndPersist(couponId: string, userId: string): Promise<ClaimOutcome> {
    const coupon = await this.catalog.find(couponId);
    if (!coupon) throw notFound('coupon');
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const reply = await this.gate.claim(coupon, userId, new Types.ObjectId().toHexString());
      if (reply.status === 'NOT_LOADED') throw new Error('unreachable: gate loads state before replying');
      if (!reply.winner) {
        // Redis lost winner entries (fewer winners than sequences taken), or may have lost whole
        // wins (a failover or restart since the reconciler last agreed): a user told SOLD_OUT or
        // ENDED may be one whose issuance MongoDB holds.
        const doubt = this.options.redisDoubt?.active ?? false;
        const suspect = reply.suspect || doubt;
        const held = suspect ? await this.gate.durableWinner(coupon, userId) : null;
        if (held) return { status: 'ALREADY_ISSUED', issuance: toIssuance(coupon.id, userId, held, true), remaining: reply.remaining };
        // The same events can lose a raise or a returned unit: Redis would say SOLD_OUT while
        // MongoDB has a unit free. The coupon is reconciled now, and a repaired state decides again.
        if (doubt && reply.status === 'SOLD_OUT' && attempt < MAX_ATTEMPTS && (await this.options.recheckSoldOut?.(coupon))) continue;
        // Sold out and consistent: later claims of it can be answered from memory.
        if (reply.status === 'SOLD_OUT' && !suspect) this.soldOut?.soldOut(coupon);
        return { status: reply.status, issuance: null, remaining: reply.remaining };
      }
      if (reply.status === 'ISSUED') {
        this.options.onStockChanged(coupon.id, reply.remaining);
        // A win at a later stock position than a remembered sell-out: a unit was free after all,
        // and this winner, whose write is pending, must never hear SOLD_OUT from memory.
        this.soldOut?.won(coupon, reply.version);
      }
      if (reply.status === 'ALREADY_ISSUED' && !reply.pending) {
        // Redis knows who won, not what became of it: a cancel writes MongoDB before Redis, so
        // the entry may be a cancelled issuance. One read by id (the one the answer's status
        // would cost anyway) keeps ALREADY_ISSUED to live issuances.
        // Read-only, so retried once: a MongoDB just back from a stall may fail the first read.
        const stored = await this.writer.stored(reply.winner.issuanceId).catch(() => this.writer.stored(reply.winner!.issuanceId));
        if (stored && stored.status !== 'CANCELLED') return { status: 'ALREADY_ISSUED', issuance: stored, remaining: reply.remaining };
        if (stored) {
          // Finish the cancel's Redis step (cancel-4.lua acts once), then claim again like anyone.
          if (await this.gate.cancel(coupon.id, userId, stored.id, stored.sequence)) this.options.onStockChanged(coupon.id);
          continue;
        }
        // Not in MongoDB at all: written like a pending win below.
      }
      // A new win, or an earlier one not known to be in MongoDB (its write unconfirmed, or its
      // confirmation lost): durable before the answer, and SERVICE_UNAVAILABLE while MongoDB is down.
      const settlement = await this.settle(coupon, userId, reply.winner, reply.status === 'ISSUED' && reply.remaining === 0);
      if (settlement.kind === 'durable') return { status: reply.status, issuance: settlement.issuance, remaining: reply.remaining };
      if (settlement.kind === 'adopted') {
        const remaining = reply.status === 'ISSUED' ? reply.remaining + 1 : reply.remaining;
        return { status: 'ALREADY_ISSUED', issuance: settlement.issuance, remaining };
      }
    }
    throw serviceUnavailable();
  }
}
