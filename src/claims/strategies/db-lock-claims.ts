/**
 * CLAIM_STRATEGY=db-lock, for load comparison only: the incident's "before", claims decided the
 * way the old system decided them, with a pessimistic lock on the coupon held across the claim's
 * round trips: lock the coupon document, check the user, insert the issuance, update the count,
 * commit, unlock. Every claimant of a coupon, winner or not, waits for that one lock in turn.
 *
 * The lock. On MongoDB a write inside a transaction holds the document until commit, and a
 * second transaction writing it waits for it: a row lock. The embedded MongoDB-compatible server
 * runs transactions but does not isolate them (four concurrent transactions bumping a field on
 * one document all committed, each having read the same value), so the lock is emulated with
 * the standard lease pattern instead: a conditional `findOneAndUpdate` that sets `lockHolder`
 * and `lockedUntil` on the coupon document only when no unexpired lease is there (atomic on
 * that server too), released by the holder with a conditional update. Waiters on one instance
 * queue first come, first served in memory, as a database's lock manager queues them, so only
 * the head asks MongoDB (retrying every few ms while another instance holds the lease). A waiter
 * gives up when the claim's deadline passes (a lock timeout): it leaves the queue and the claim
 * answers SERVICE_UNAVAILABLE. The lease (5 s) frees the lock of a holder that died.
 * The issuance insert and the count update are committed together in a transaction.
 */
import { randomUUID } from 'node:crypto';
import { Types, type ClientSession } from 'mongoose';
import { DeadlineExceededError, notFound } from '../../errors';
import type { ClaimOutcome } from '../../coupons/coupon-model';
import type { CouponDefinition, IssuanceRecord } from '../../coupons/coupon-model';
import { DbCounterClaims, violatedIndex } from './db-atomic-claims';

/** A holder that died frees the lock after this long. */
const LEASE_MS = 5000;
/** How often the head of the queue asks again while another instance holds the lease. */
const LEASE_RETRY_MS = 5;

export class DbLockClaims extends DbCounterClaims {
  private readonly queues = new Map<string, LockQueue>();
  private readonly holderPrefix = randomUUID();
  private holds = 0;

  protected async decide(couponId: string, userId: string): Promise<ClaimOutcome> {
    const coupon = await this.catalog.find(couponId);
    if (!coupon) throw notFound('coupon');
    const deadline = performance.now() + this.options.deadlineMs;
    const queue = this.queueOf(coupon.id);
    const leave = await queue.enter(this.options.deadlineMs);
    try {
      const holder = `${this.holderPrefix}:${++this.holds}`;
      const locked = await this.acquireLease(coupon, holder, deadline);
      try {
        return await this.underLock(coupon, userId, locked.issuedCount ?? 0);
      } finally {
        await this.releaseLease(coupon, holder);
      }
    } finally {
      leave();
    }
  }

  /** Everything the old system did while it held the coupon's lock, one round trip after another. */
  private async underLock(coupon: CouponDefinition, userId: string, issued: number): Promise<ClaimOutcome> {
    const remaining = Math.max(0, coupon.totalQuantity - issued);
    // Same precedence as the Redis claim script: a holder hears ALREADY_ISSUED even after the end.
    const held = await this.heldBy(coupon, userId);
    if (held) return { status: 'ALREADY_ISSUED', issuance: held, remaining };
    const now = this.clock();
    if (now < coupon.startsAt) return { status: 'NOT_STARTED', issuance: null, remaining };
    if (coupon.endsAt && now >= coupon.endsAt) return { status: 'ENDED', issuance: null, remaining };
    if (remaining === 0) return { status: 'SOLD_OUT', issuance: null, remaining: 0 };

    // The counter ran behind MongoDB only after a fault; the unique index then names the next free sequence.
    let sequence: number | undefined = issued + 1;
    while (sequence !== undefined) {
      const issuance: IssuanceRecord = { id: new Types.ObjectId().toHexString(), couponId: coupon.id, userId, sequence, issuedAt: now, status: 'ACTIVE' };
      try {
        await this.commitIssuance(coupon, issuance);
        this.options.onStockChanged(coupon.id);
        return { status: 'ISSUED', issuance, remaining: remaining - 1 };
      } catch (error) {
        const index = violatedIndex(error);
        if (index === 'one_per_user') {
          const stored = await this.heldBy(coupon, userId);
          if (stored) return { status: 'ALREADY_ISSUED', issuance: stored, remaining };
        }
        if (index !== 'one_per_sequence') throw error;
        sequence = await this.firstFreeSequence(coupon);
      }
    }
    return { status: 'SOLD_OUT', issuance: null, remaining: 0 };
  }

  /** Inserts the issuance and counts it, committed together. */
  private async commitIssuance(coupon: CouponDefinition, issuance: IssuanceRecord): Promise<void> {
    const _id = new Types.ObjectId(coupon.id);
    const session: ClientSession = await this.models.Coupon.db.startSession();
    try {
      await session.withTransaction(async () => {
        await this.models.Issuance.collection.insertOne(
          { _id: new Types.ObjectId(issuance.id), couponId: _id, userId: issuance.userId, sequence: issuance.sequence, issuedAt: issuance.issuedAt, status: 'ACTIVE' },
          { session },
        );
        await this.counters().updateOne({ _id }, { $inc: { issuedCount: 1, stockVersion: 1 } }, { session });
      });
    } finally {
      await session.endSession();
    }
  }

  /** Takes the coupon's lease; returns the coupon's counter as it was when locked ("SELECT ... FOR UPDATE"). */
  private async acquireLease(coupon: CouponDefinition, holder: string, deadline: number) {
    const _id = new Types.ObjectId(coupon.id);
    for (;;) {
      const now = new Date();
      const locked = await this.counters().findOneAndUpdate(
        { _id, lockedUntil: { $not: { $gt: now } } },
        { $set: { lockHolder: holder, lockedUntil: new Date(now.getTime() + LEASE_MS) } },
        { returnDocument: 'after', projection: { issuedCount: 1 } },
      );
      if (locked) return locked;
      if (performance.now() + LEASE_RETRY_MS >= deadline) throw new DeadlineExceededError('claim waited for the coupon lock until its deadline');
      await new Promise((resolve) => setTimeout(resolve, LEASE_RETRY_MS));
    }
  }

  private async releaseLease(coupon: CouponDefinition, holder: string): Promise<void> {
    await this.counters().updateOne({ _id: new Types.ObjectId(coupon.id), lockHolder: holder }, { $unset: { lockHolder: '', lockedUntil: '' } });
  }

  private queueOf(couponId: string): LockQueue {
    let queue = this.queues.get(couponId);
    if (!queue) {
      queue = new LockQueue(() => this.queues.delete(couponId));
      this.queues.set(couponId, queue);
    }
    return queue;
  }
}

/** Claims of one coupon on this instance waiting for its lock, first come first served, each for at most its deadline. */
export class LockQueue {
  private busy = false;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly onIdle: () => void) {}

  /** Resolves with the function that lets the next waiter in; rejects when `timeoutMs` passes first. */
  enter(timeoutMs: number): Promise<() => void> {
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve(this.leaveOnce());
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        clearTimeout(timer);
        resolve(this.leaveOnce());
      };
      const timer = setTimeout(() => {
        const at = this.waiting.indexOf(grant);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(new DeadlineExceededError('claim waited for the coupon lock until its deadline'));
      }, timeoutMs);
      this.waiting.push(grant);
    });
  }

  get length(): number {
    return this.waiting.length;
  }

  private leaveOnce(): () => void {
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const next = this.waiting.shift();
      if (next) next();
      else {
        this.busy = false;
        this.onIdle();
      }
    };
  }
}
