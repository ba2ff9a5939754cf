/**
 * Operators' changes to a coupon: updateCoupon and endCoupon (createCoupon is the catalog's).
 *
 * MongoDB is the source of truth and the arbiter of concurrent changes: a change is stored by
 * compare-and-set on the coupon's revision (only the fields that changed; the revision goes up
 * by one), so of two changes that read the same revision, on one instance or two, exactly one is
 * stored. The other reads the coupon again, checks its input against the newer definition and
 * tries again (up to MAX_ATTEMPTS, then SERVICE_UNAVAILABLE): two updates of different fields
 * both stick, and an update that started before an end cannot move the end back.
 *
 * Redis's claim state follows MongoDB's revision (define-2.lua keeps it in meta, and an older
 * definition never replaces a newer one), and at every moment admits no more than MongoDB's
 * definition does:
 * 1. A change that narrows the coupon (a lower totalQuantity, an earlier end, a later start)
 *    first holds the narrowed definition in Redis (the intersection of the old and the new),
 *    refused atomically with claims when the units taken, or a live sequence, are above the new
 *    total. One hold per coupon at a time; rebuilds and the reconciler leave it alone until it
 *    expires (HOLD_MS). With Redis unreachable such a change answers SERVICE_UNAVAILABLE and
 *    changes nothing: it could not be checked against the claims. A widening change (a raise, a
 *    later end, a rename) skips this step: until Redis has it, Redis admits less, never more.
 * 2. MongoDB's compare-and-set. Lost to another change: the hold is undone, and we retry. Failed
 *    (an error, a timeout): MongoDB is asked what it holds; the old revision means no change (the
 *    hold is undone), ours means the change is complete (we carry on). When MongoDB cannot say,
 *    the answer is SERVICE_UNAVAILABLE; the hold expires and the reconciler then sets whichever
 *    revision MongoDB holds, so the change is, in the end, whole or absent in both stores.
 * 3. Redis 'commit' of the stored definition at its revision (a coupon not loaded is loaded from
 *    MongoDB first, so a rebuild under way cannot publish the older one after it). A Redis failure
 *    here is left to the reconciler, which sets MongoDB's newer revision.
 * Then every instance is told (CouponChanges), and the change is recorded in the audit trail.
 */
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import type { Logger } from 'pino';
import { badUserInput, notFound, serviceUnavailable, toClientError, withDeadline } from '../errors';
import { LIVE, type Models } from '../mongo/models';
import type { DefineMode, DefineOutcome } from '../redis/scripts';
import type { AuditLog } from '../access/audit-log';
import type { Viewer } from '../access/auth';
import {
  assertCouponId,
  belowSequence,
  DEFINITION_FIELDS,
  sameDefinition,
  validateUpdateCoupon,
  type CouponCatalog,
  type UpdateCouponRequest,
} from '../coupons/coupon-catalog';
import type { CouponGate } from '../claims/coupon-gate';
import type { CouponChanges } from '../coupons/coupon-changes';
import type { CouponDefinition } from '../coupons/coupon-model';

/** How long a narrowing change holds Redis against rebuilds and the reconciler: longer than its MongoDB write may take. */
export const HOLD_MS = 5000;
/** Compare-and-set attempts before a change gives up with SERVICE_UNAVAILABLE (each re-reads the coupon). */
export const MAX_ATTEMPTS = 8;
const DEADLINE_MS = 2000;

type Action = 'UPDATE_COUPON' | 'END_COUPON';
/** The definition a change makes of the current one; null when it changes nothing. */
type Plan = (current: CouponDefinition, first: CouponDefinition) => Promise<CouponDefinition | null>;

export class CouponAdmin {
  constructor(
    private readonly catalog: CouponCatalog,
    private readonly gate: Pick<CouponGate, 'define' | 'ensureLoaded'> | undefined,
    private readonly changes: Pick<CouponChanges, 'announce'>,
    private readonly models: Models,
    private readonly audit: AuditLog,
    private readonly logger: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async update(actor: Viewer, id: string, input: UpdateCouponRequest): Promise<CouponDefinition> {
    assertCouponId(id);
    return this.guard(() =>
      this.change(actor, 'UPDATE_COUPON', id, async (current, first) => {
        const now = this.clock();
        // An end stored since this request first read the coupon is not moved back by it.
        if (input.endsAt !== undefined && !isEnded(first, now) && isEnded(current, now)) {
          throw badUserInput('the coupon was ended meanwhile by another request; endsAt was not changed', 'endsAt');
        }
        const lowering = input.totalQuantity != null && input.totalQuantity < current.totalQuantity;
        const { issued, highest } = lowering ? await this.liveIssuances(id) : { issued: 0, highest: 0 };
        return validateUpdateCoupon(current, input, now, issued, highest);
      }),
    );
  }

  /** Ends the coupon now; an ended coupon is returned unchanged. */
  async end(actor: Viewer, id: string): Promise<CouponDefinition> {
    assertCouponId(id);
    return this.guard(() =>
      this.change(actor, 'END_COUPON', id, async (current) => {
        const now = this.clock();
        if (isEnded(current, now)) return null;
        // A coupon that has not started yet ends as well: its start moves to now, so it reads ENDED, not SCHEDULED.
        const startsAt = current.startsAt < now ? current.startsAt : new Date(now.getTime() - 1);
        return { ...current, startsAt, endsAt: now };
      }),
    );
  }

  /** Read, plan, store by compare-and-set; again from the newer definition when another change got there first. */
  private async change(actor: Viewer, action: Action, id: string, plan: Plan): Promise<CouponDefinition> {
    let first: CouponDefinition | undefined;
    for (let attempt = 1; ; attempt++) {
      const current = await this.current(id);
      first ??= current;
      const next = await plan(current, first);
      if (!next) {
        const endsAt = current.endsAt?.toISOString();
        await this.audit.record({ action, actor, couponId: id, before: { endsAt }, after: { endsAt, unchanged: true } });
        return current;
      }
      const saved = await this.apply(current, next);
      if (saved !== 'conflict') {
        await this.changes.announce({ couponId: saved.id, definition: true });
        await this.audit.record({ action, actor, couponId: saved.id, ...diff(current, saved) });
        return saved;
      }
      if (attempt >= MAX_ATTEMPTS) throw serviceUnavailable('the coupon is being changed by other requests; please retry');
      this.logger.debug({ couponId: id, attempt }, 'coupon changed by another request meanwhile; reading it again');
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt));
    }
  }

  /** One attempt at storing `next` over `current` (steps 1 to 3 above). */
  private async apply(current: CouponDefinition, next: CouponDefinition): Promise<CouponDefinition | 'conflict'> {
    const token = randomUUID();
    const held = narrows(current, next) ? await this.hold(current, next, token) : false;
    if (held === 'conflict') return 'conflict';
    let saved: CouponDefinition | 'conflict' | null;
    try {
      saved = await this.catalog.save(current, next);
    } catch (error) {
      saved = await this.afterFailedWrite(current, next, token, held, error);
    }
    if (saved === 'conflict' || saved === null) {
      if (held) await this.undo(current, token);
      if (saved === null) throw notFound('coupon');
      return 'conflict';
    }
    await this.commit(saved);
    return saved;
  }

  /** Step 1: the narrowed definition, checked against the claims and held; true when held. */
  private async hold(current: CouponDefinition, next: CouponDefinition, token: string): Promise<boolean | 'conflict'> {
    if (!this.gate) return false;
    const narrowed = intersection(current, next);
    let outcome: DefineOutcome;
    try {
      outcome = await this.define(narrowed, 'hold', token);
      if (outcome === 'not-loaded') {
        // Not in Redis (or being rebuilt): load it, so the check counts every unit taken.
        await this.gate.ensureLoaded(current);
        outcome = await this.define(narrowed, 'hold', token);
      }
    } catch (error) {
      this.logger.warn({ couponId: current.id, err: (error as Error).message }, 'narrowing coupon change refused: its claim state in redis is unreachable');
      await this.undo(current, token);
      throw Object.assign(serviceUnavailable('the claim state is unreachable, so the coupon cannot be narrowed now; nothing was changed'), { originalError: error });
    }
    switch (outcome) {
      case 'updated':
        return true;
      case 'below-taken':
        throw badUserInput('totalQuantity cannot go below issuedCount (claims won meanwhile)', 'totalQuantity');
      case 'below-sequence':
        throw badUserInput(belowSequence(), 'totalQuantity');
      case 'stale':
      case 'busy':
      case 'held':
        return 'conflict';
      case 'not-loaded':
        throw serviceUnavailable('the claim state could not be loaded, so the coupon cannot be narrowed now; nothing was changed');
    }
  }

  /**
   * MongoDB's write failed (or timed out): whether it landed decides. Ours stored → carry on
   * (complete); not stored → undo the hold (no change); unknown → SERVICE_UNAVAILABLE, and the
   * reconciler sets MongoDB's revision once the hold expires.
   */
  private async afterFailedWrite(current: CouponDefinition, next: CouponDefinition, token: string, held: boolean, error: unknown): Promise<CouponDefinition> {
    const stored = await this.catalog.fresh(current.id).catch(() => undefined);
    if (stored === undefined) throw error;
    if (stored && stored.revision === (current.revision ?? 0) + 1 && sameDefinition(stored, next)) return stored;
    if (held) await this.undo(current, token);
    throw error;
  }

  /** Takes back this change's hold (only if it is still this change's); on failure the hold expires. */
  private async undo(current: CouponDefinition, token: string): Promise<void> {
    try {
      await this.define(current, 'undo', token);
    } catch (error) {
      this.logger.warn({ couponId: current.id, err: (error as Error).message }, 'coupon change hold not undone in redis; it expires and the reconciler sets mongodb\'s definition');
    }
  }

  /** Step 3: the stored definition into the claim state, loading it first when absent. */
  private async commit(saved: CouponDefinition): Promise<void> {
    if (!this.gate) return;
    try {
      if ((await this.define(saved, 'commit')) === 'not-loaded') {
        await this.gate.ensureLoaded(saved);
        await this.define(saved, 'commit');
      }
    } catch (error) {
      this.logger.warn({ couponId: saved.id, err: (error as Error).message }, 'coupon change not written to redis; the reconciler will apply it from mongodb');
    }
  }

  private define(definition: CouponDefinition, mode: DefineMode, token = ''): Promise<DefineOutcome> {
    return this.gate ? this.gate.define(definition, mode === 'hold' ? HOLD_MS : 0, mode, token) : Promise.resolve('not-loaded');
  }

  /** MongoDB's count of live issuances and their highest sequence: the early answer to a lowering (Redis decides). */
  private async liveIssuances(id: string): Promise<{ issued: number; highest: number }> {
    const couponId = new Types.ObjectId(id);
    const [issued, top] = await Promise.all([
      this.models.Issuance.countDocuments({ couponId, ...LIVE }),
      this.models.Issuance.findOne({ couponId, ...LIVE }).sort({ sequence: -1 }).select({ sequence: 1 }).lean(),
    ]);
    return { issued, highest: top?.sequence ?? 0 };
  }

  private async current(id: string): Promise<CouponDefinition> {
    const current = await this.catalog.fresh(id);
    if (!current) throw notFound('coupon');
    return current;
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(work(), DEADLINE_MS, 'coupon change');
    } catch (error) {
      const clientError = toClientError(error);
      throw clientError === error ? error : Object.assign(clientError, { originalError: error });
    }
  }
}

function isEnded(definition: CouponDefinition, now: Date): boolean {
  return definition.endsAt !== null && definition.endsAt <= now;
}

const endOf = (definition: CouponDefinition) => definition.endsAt?.getTime() ?? Infinity;

/** Whether `next` admits less than `current` anywhere: fewer units, a later start or an earlier end. */
export function narrows(current: CouponDefinition, next: CouponDefinition): boolean {
  return next.totalQuantity < current.totalQuantity || next.startsAt > current.startsAt || endOf(next) < endOf(current);
}

/** What both definitions admit: held in Redis while a narrowing change is written to MongoDB. */
export function intersection(current: CouponDefinition, next: CouponDefinition): CouponDefinition {
  return {
    ...current,
    totalQuantity: Math.min(current.totalQuantity, next.totalQuantity),
    startsAt: next.startsAt > current.startsAt ? next.startsAt : current.startsAt,
    endsAt: endOf(next) < endOf(current) ? next.endsAt : current.endsAt,
  };
}

/** The fields that changed, before and after, as the audit trail stores them. */
export function diff(before: CouponDefinition, after: CouponDefinition): { before: Record<string, unknown>; after: Record<string, unknown> } {
  const shown = (value: unknown) => (value instanceof Date ? value.toISOString() : value);
  const changed = DEFINITION_FIELDS.filter((field) => shown(before[field]) !== shown(after[field]));
  return {
    before: Object.fromEntries(changed.map((field) => [field, shown(before[field])])),
    after: Object.fromEntries(changed.map((field) => [field, shown(after[field])])),
  };
}
