/**
 * Redis holds what is live: the claim state of a coupon that ENDED at least `retentionMs` ago,
 * with no write pending, is removed (retire-4.lua). Nothing needs it any more: a claim of an
 * ENDED coupon is answered from MongoDB without rebuilding it (CouponGate.endedReply), a read
 * counts its live issuances in MongoDB, a redeem is MongoDB alone, and a cancel of an ENDED
 * coupon's issuance returns no unit. A coupon reopened by updateCoupon is rebuilt from MongoDB on
 * its next claim, as after any loss of Redis.
 *
 * Each pass asks MongoDB for the coupons that ended between the last pass's bound and now minus
 * the retention (the first pass: every ended coupon, so states left from before are removed too),
 * plus those whose removal had to wait. Every instance runs it; removing twice is harmless.
 */
import { Types } from 'mongoose';
import type { Logger } from 'pino';
import type { Models } from '../mongo/models';
import { PeriodicTask } from '../support/periodic-task';
import type { CouponGate } from './coupon-gate';

const CHUNK = 100;

export interface EndedStatesOptions {
  /** How long after its end a coupon's claim state stays in Redis (a late write settles meanwhile). */
  retentionMs: number;
  intervalMs: number;
  onRetired?: (count: number) => void;
}

export class EndedStates {
  /** Every coupon that ended at or before this (epoch ms) has been retired or is in `later`. */
  private sweptUpTo = 0;
  private readonly later = new Set<string>();
  private readonly task: PeriodicTask;

  constructor(
    private readonly models: Models,
    private readonly gate: Pick<CouponGate, 'retire'>,
    private readonly logger: Logger,
    private readonly options: EndedStatesOptions,
  ) {
    this.task = new PeriodicTask(async (signal) => void (await this.runOnce(signal)), logger, 'removing ended coupons from redis failed; will retry');
  }

  start(): void {
    this.task.start(this.options.intervalMs);
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** One pass; returns how many states were removed. */
  async runOnce(signal?: AbortSignal): Promise<number> {
    const upTo = Date.now() - this.options.retentionMs;
    const docs = await this.models.Coupon.find({ endsAt: { $gt: new Date(this.sweptUpTo), $lte: new Date(upTo) } })
      .select({ _id: 1 })
      .lean();
    const ids = [...new Set([...this.later, ...docs.map((doc) => (doc._id as Types.ObjectId).toHexString())])];
    let retired = 0;
    for (let i = 0; i < ids.length; i += CHUNK) {
      if (signal?.aborted) return retired;
      const chunk = ids.slice(i, i + CHUNK);
      const outcomes = await Promise.all(chunk.map((id) => this.gate.retire(id, this.options.retentionMs)));
      chunk.forEach((id, j) => {
        if (outcomes[j] === 'later') this.later.add(id);
        else this.later.delete(id);
        if (outcomes[j] === 'retired') retired += 1;
      });
    }
    this.sweptUpTo = Math.max(this.sweptUpTo, upTo);
    if (retired > 0) {
      this.logger.info({ retired }, 'removed the redis state of ended coupons');
      this.options.onRetired?.(retired);
    }
    return retired;
  }
}
