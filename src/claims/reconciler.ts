/**
 * Background repair of drift between Redis and MongoDB, on start-up and every interval.
 * 1. Settles reservations whose MongoDB write was never confirmed (the service crashed, or
 *    MongoDB failed and the client was told SERVICE_UNAVAILABLE): each is written to MongoDB,
 *    or settled in MongoDB's favour, so stock is never silently lost.
 * 2. Compares the definition in each coupon's claim state (total, startsAt, endsAt) with
 *    MongoDB's, and sets MongoDB's when they differ (an updateCoupon whose Redis step failed),
 *    unless an admin change is still being written (its hold, see define-2.lua).
 * 3. Compares each coupon's Redis bookkeeping with MongoDB's count of live (not CANCELLED)
 *    issuances and, when they provably disagree, rebuilds the coupon's Redis state from MongoDB,
 *    the record that decides.
 */
import type { Logger } from 'pino';
import { Types } from 'mongoose';
import { LIVE, type Models } from '../mongo/models';
import type { GateInspection, MetaDefinition } from '../redis/scripts';
import type { ClaimService } from './claim-service';
import type { CouponCatalog } from '../coupons/coupon-catalog';
import type { CouponGate } from './coupon-gate';
import type { CouponDefinition } from '../coupons/coupon-model';
import { PeriodicTask } from '../support/periodic-task';

export interface ReconcilerOptions {
  intervalMs: number;
  /** A reservation younger than this may still be in its claim's own write; leave it alone. */
  pendingGraceMs: number;
  onRepair?: (kind: string, count: number) => void;
  /**
   * After each scheduled pass: whether every coupon was reconciled (false when the listing failed
   * or any coupon did), and the age of the oldest unconfirmed reservation it left (0: none).
   */
  onPass?: (pass: { ok: boolean; oldestPendingMs: number }) => void;
  /**
   * After a scheduled pass that began at `startedAt` and found every open coupon's Redis state in
   * agreement with MongoDB (or rebuilt it from MongoDB): what Redis answers can be trusted again.
   */
  onVerified?: (startedAt: number) => void;
  /** A coupon this pass could not reconcile (the others still were), by the step that failed. */
  onCouponFailed?: (step: ReconcileStep) => void;
}

/** How long a checkNow result answers the claims that ask after it (a burst of sold-out claims). */
const CHECK_REUSE_MS = 250;

/** The steps of one coupon's reconciliation, in order. */
export type ReconcileStep = 'load' | 'definition' | 'pending' | 'drift';

/** One coupon's step failed; the pass went on with the next coupon. */
class CouponStepError extends Error {
  constructor(
    readonly step: ReconcileStep,
    override readonly cause: unknown,
  ) {
    super(`${step}: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

export type DriftVerdict =
  | { kind: 'in-sync' }
  /** Not loaded, or reservations await their write: the counts cannot be compared now. */
  | { kind: 'undecided' }
  | { kind: 'drift'; reason: DriftReason };

export type DriftReason =
  /** MongoDB holds issuances Redis does not count (a write landed after a rebuild): remaining shows too many. */
  | 'redis_behind'
  /** Redis counts sequences as taken that MongoDB has no issuance for: stock is leaked, remaining shows too few. */
  | 'redis_ahead'
  /** The winners hash disagrees with the sequence bookkeeping: users would be sent through a needless retry. */
  | 'winners_mismatch';

/**
 * Decides from one consistent Redis reading and MongoDB's count, taken after it, whether the
 * coupon's Redis state is provably wrong. Only a reading without pending reservations is judged:
 * then every Redis winner is confirmed in MongoDB, and MongoDB holds nothing Redis did not hand out
 * unless a write from before a rebuild landed late. So the three counts must be equal.
 */
export function judgeDrift(redis: Pick<GateInspection, 'loaded' | 'taken' | 'winners' | 'pending'>, mongoCount: number): DriftVerdict {
  if (!redis.loaded || redis.pending > 0) return { kind: 'undecided' };
  if (mongoCount > redis.taken) return { kind: 'drift', reason: 'redis_behind' };
  if (mongoCount < redis.taken) return { kind: 'drift', reason: 'redis_ahead' };
  if (redis.winners !== redis.taken) return { kind: 'drift', reason: 'winners_mismatch' };
  return { kind: 'in-sync' };
}

/** Whether the claim state's definition is MongoDB's; a state not loaded has nothing to compare. */
/** Runs one step of a coupon's reconciliation, naming the step if it fails. */
async function step(name: ReconcileStep, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    throw new CouponStepError(name, error);
  }
}

export function sameClaimWindow(redis: MetaDefinition | null, coupon: CouponDefinition): boolean {
  if (!redis) return true;
  return redis.total === coupon.totalQuantity && redis.startsAt === coupon.startsAt.getTime() && redis.endsAt === (coupon.endsAt?.getTime() ?? 0);
}

export class Reconciler {
  private readonly task: PeriodicTask;
  /** Coupons the pass in progress could not show to agree with MongoDB (writes pending, a change meanwhile). */
  private unverified = 0;
  /** The oldest unconfirmed reservation seen by the pass in progress (ms). */
  private oldestPendingMs = 0;
  /** Repairs made so far (definition or drift): tells checkNow whether its coupon's state changed. */
  private repairs = 0;
  /** checkNow's checks in flight or just done, by coupon: one reconciliation serves a burst of claims. */
  private readonly checks = new Map<string, Promise<boolean>>();

  constructor(
    private readonly catalog: CouponCatalog,
    private readonly gate: CouponGate,
    private readonly claims: ClaimService,
    private readonly models: Models,
    private readonly logger: Logger,
    private readonly options: ReconcilerOptions,
  ) {
    this.task = new PeriodicTask(
      async (signal) => {
        this.oldestPendingMs = 0;
        const startedAt = Date.now();
        let failed: number;
        try {
          failed = await this.runOnce(signal);
        } catch (error) {
          this.options.onPass?.({ ok: false, oldestPendingMs: this.oldestPendingMs });
          throw error;
        }
        this.options.onPass?.({ ok: failed === 0, oldestPendingMs: this.oldestPendingMs });
        if (failed === 0 && this.unverified === 0 && !signal.aborted) this.options.onVerified?.(startedAt);
      },
      logger,
      'reconciliation pass failed; will retry',
    );
  }

  start(): void {
    this.task.start(this.options.intervalMs);
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /**
   * One pass over every coupon that takes claims or did recently. Stopped, it ends after the
   * coupon at hand: each repair is complete in itself, and the next start goes over them all again.
   * A coupon that fails is logged and counted, and the pass goes on with the next one: one coupon
   * that cannot be settled must never keep every other coupon from being settled and repaired.
   * Resolves with the number of coupons that failed.
   */
  async runOnce(signal?: AbortSignal): Promise<number> {
    let failed = 0;
    this.unverified = 0;
    for (const coupon of await this.catalog.listRecentlyOpen()) {
      if (signal?.aborted) break;
      try {
        await this.reconcile(coupon);
      } catch (error) {
        failed += 1;
        const { step, cause } = error instanceof CouponStepError ? error : { step: 'load' as const, cause: error };
        this.logger.error({ couponId: coupon.id, step, err: (cause as Error)?.message ?? String(cause) }, 'could not reconcile a coupon; the pass goes on with the others and the next pass retries it');
        this.options.onCouponFailed?.(step);
      }
    }
    return failed;
  }

  /**
   * One coupon reconciled now, outside the schedule: a claim that doubts Redis's SOLD_OUT (after
   * an event that can lose writes, Redis may lack a raise or a returned unit) asks for it. True
   * when the coupon's Redis state was changed to MongoDB's, so the claim should be decided again.
   * A check in flight, or done in the last CHECK_REUSE_MS, answers every claim that asks meanwhile.
   */
  checkNow(coupon: CouponDefinition): Promise<boolean> {
    let check = this.checks.get(coupon.id);
    if (!check) {
      const before = this.repairs;
      check = this.reconcile(coupon).then(
        () => this.repairs > before,
        () => false,
      );
      this.checks.set(coupon.id, check);
      void check.finally(() => setTimeout(() => this.checks.delete(coupon.id), CHECK_REUSE_MS).unref());
    }
    return check;
  }

  private async reconcile(coupon: CouponDefinition): Promise<void> {
    await step('load', async () => {
      await this.gate.ensureLoaded(coupon);
    });
    await step('definition', () => this.repairDefinition(coupon));
    await step('pending', () => this.settlePending(coupon));
    await step('drift', async () => {
      // What settling left behind: a reservation that keeps ageing is stock stuck until its write lands.
      const oldest = await this.gate.oldestPendingAt(coupon.id);
      if (oldest !== undefined) this.oldestPendingMs = Math.max(this.oldestPendingMs, Date.now() - oldest);
      if (!(await this.repairDrift(coupon))) this.unverified += 1;
    });
  }

  private async repairDefinition(listed: CouponDefinition): Promise<void> {
    if (sameClaimWindow(await this.gate.metaDefinition(listed.id), listed)) return;
    // Read again right before the repair: the listing may be older than an admin change.
    const coupon = await this.catalog.fresh(listed.id);
    if (!coupon) return;
    const seen = await this.gate.metaDefinition(coupon.id);
    if (!seen || sameClaimWindow(seen, coupon)) return;
    if ((await this.gate.define(coupon, 0, 'repair')) !== 'updated') return;
    this.repairs += 1;
    this.logger.warn(
      { couponId: coupon.id, redis: seen, mongo: { total: coupon.totalQuantity, startsAt: coupon.startsAt.getTime(), endsAt: coupon.endsAt?.getTime() ?? 0 } },
      'redis held another coupon definition than mongodb; set mongodb\'s',
    );
    this.options.onRepair?.('definition', 1);
  }

  private async settlePending(coupon: CouponDefinition): Promise<void> {
    const pending = await this.gate.pendingWinners(coupon.id, this.options.pendingGraceMs);
    if (pending.length === 0) return;
    // All at once: the issuance writer commits them together, in a batch or a few. Each settles
    // on its own: one that fails leaves the others settled, and is tried again next pass.
    const settlements = await Promise.allSettled(pending.map(({ userId, winner }) => this.claims.settle(coupon, userId, winner)));
    const kinds = { durable: 0, adopted: 0, revoked: 0, cancelled: 0 };
    const failures: string[] = [];
    settlements.forEach((settlement, i) => {
      if (settlement.status === 'fulfilled') kinds[settlement.value.kind] += 1;
      else failures.push(`${pending[i]!.userId}: ${(settlement.reason as Error)?.message ?? String(settlement.reason)}`);
    });
    if (settlements.length > failures.length) this.logger.warn({ couponId: coupon.id, ...kinds }, 'settled reservations whose mongodb write was unconfirmed');
    for (const [kind, count] of Object.entries(kinds)) if (count) this.options.onRepair?.(`pending_${kind}`, count);
    if (failures.length) throw new Error(`${failures.length} of ${pending.length} reservations not settled (${failures.slice(0, 3).join('; ')})`);
  }

  /** Whether the coupon's Redis state is now known to agree with MongoDB (in agreement, or rebuilt). */
  private async repairDrift(coupon: CouponDefinition): Promise<boolean> {
    const seen = await this.gate.inspect(coupon.id);
    if (!seen.loaded || seen.pending > 0) return false;
    // Counted after the reading: a claim in between changes the version, and the repair declines.
    const mongoCount = await this.models.Issuance.countDocuments({ couponId: new Types.ObjectId(coupon.id), ...LIVE });
    const verdict = judgeDrift(seen, mongoCount);
    if (verdict.kind !== 'drift') return verdict.kind === 'in-sync';
    if (!(await this.gate.forgetIfUnchanged(coupon.id, seen))) return false;
    await this.gate.ensureLoaded(coupon);
    this.repairs += 1;
    this.logger.warn(
      { couponId: coupon.id, kind: verdict.reason, redisTaken: seen.taken, redisWinners: seen.winners, mongoIssuances: mongoCount },
      'redis disagreed with mongodb; rebuilt the coupon state from mongodb',
    );
    this.options.onRepair?.(`drift_${verdict.reason}`, 1);
    return true;
  }
}
