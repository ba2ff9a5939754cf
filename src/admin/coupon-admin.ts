/**
 * Operators' changes to a coupon: updateCoupon and endCoupon (createCoupon is the catalog's).
 *
 * MongoDB is the source of truth and Redis holds the claim state derived from it, so a change
 * goes to both, in an order that keeps the guarantees at every moment:
 * 1. Redis first, provisionally (define-2.lua, mode 'admin'): the new window and quantity apply to
 *    claims at once, atomically with them. A totalQuantity below the units taken is refused here,
 *    where no claim can slip in between the check and the change; MongoDB's count before it
 *    only gives the early answer. The definition is held against the reconciler for HOLD_MS.
 * 2. MongoDB: the definition is stored. If this fails, step 1 is undone (and if that fails too,
 *    the reconciler sets Redis back to MongoDB's definition once the hold expires).
 * 3. Redis again, shortening the hold to SETTLE_HOLD_MS; then every instance is told (CouponChanges), and the change
 *    is recorded in the audit trail.
 * Redis unreachable in step 1 or 3 does not stop the change: MongoDB has it, and the rebuild and
 * the reconciler bring Redis to it (see reconciler.ts).
 */
import { Types } from 'mongoose';
import type { Logger } from 'pino';
import { badUserInput, notFound, toClientError, withDeadline } from '../errors';
import { LIVE, type Models } from '../mongo/models';
import type { DefineOutcome } from '../redis/scripts';
import type { AuditLog } from '../access/audit-log';
import type { Viewer } from '../access/auth';
import { assertCouponId, validateUpdateCoupon, type CouponCatalog, type UpdateCouponRequest } from '../coupons/coupon-catalog';
import type { CouponGate } from '../claims/coupon-gate';
import type { CouponChanges } from '../coupons/coupon-changes';
import type { CouponDefinition } from '../coupons/coupon-model';

/** Longer than any MongoDB write is allowed to take (its deadline is 2 s). */
export const HOLD_MS = 5000;
/**
 * Kept after the change is stored, so a reconciler pass that read MongoDB just before it cannot
 * put the older definition back (it re-reads MongoDB right before a repair, within milliseconds).
 */
export const SETTLE_HOLD_MS = 1000;
const DEADLINE_MS = 2000;

export class CouponAdmin {
  constructor(
    private readonly catalog: CouponCatalog,
    private readonly gate: Pick<CouponGate, 'define'> | undefined,
    private readonly changes: Pick<CouponChanges, 'announce'>,
    private readonly models: Models,
    private readonly audit: AuditLog,
    private readonly logger: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async update(actor: Viewer, id: string, input: UpdateCouponRequest): Promise<CouponDefinition> {
    assertCouponId(id);
    return this.guard(async () => {
      const current = await this.current(id);
      const lowering = input.totalQuantity != null && input.totalQuantity < current.totalQuantity;
      const issued = lowering ? await this.models.Issuance.countDocuments({ couponId: new Types.ObjectId(id), ...LIVE }) : 0;
      const next = validateUpdateCoupon(current, input, this.clock(), issued);
      return this.apply(actor, 'UPDATE_COUPON', current, next);
    });
  }

  /** Ends the coupon now; an ended coupon is returned unchanged. */
  async end(actor: Viewer, id: string): Promise<CouponDefinition> {
    assertCouponId(id);
    return this.guard(async () => {
      const current = await this.current(id);
      const now = this.clock();
      if (current.endsAt && current.endsAt <= now) {
        await this.audit.record({ action: 'END_COUPON', actor, couponId: id, before: { endsAt: current.endsAt.toISOString() }, after: { endsAt: current.endsAt.toISOString(), unchanged: true } });
        return current;
      }
      // A coupon that has not started yet ends as well: its start moves to now, so it reads ENDED, not SCHEDULED.
      const startsAt = current.startsAt < now ? current.startsAt : new Date(now.getTime() - 1);
      return this.apply(actor, 'END_COUPON', current, { ...current, startsAt, endsAt: now });
    });
  }

  private async apply(actor: Viewer, action: 'UPDATE_COUPON' | 'END_COUPON', current: CouponDefinition, next: CouponDefinition): Promise<CouponDefinition> {
    const claimState = (definition: CouponDefinition, holdMs: number) => this.define(definition, holdMs);
    const first = await claimState(next, HOLD_MS);
    if (first === 'below-taken') {
      throw badUserInput('totalQuantity cannot go below issuedCount (claims won meanwhile)', 'totalQuantity');
    }
    let saved: CouponDefinition | null;
    try {
      saved = await this.catalog.save(next);
    } catch (error) {
      if (first === 'updated') await claimState(current, 0);
      throw error;
    }
    if (!saved) throw notFound('coupon');
    await claimState(saved, SETTLE_HOLD_MS);
    await this.changes.announce({ couponId: saved.id, definition: true });
    await this.audit.record({ action, actor, couponId: saved.id, ...diff(current, saved) });
    return saved;
  }

  /** The claim state's side of a change; a Redis failure is logged and left to the reconciler. */
  private async define(definition: CouponDefinition, holdMs: number): Promise<DefineOutcome | 'failed'> {
    if (!this.gate) return 'not-loaded';
    try {
      return await this.gate.define(definition, holdMs, 'admin');
    } catch (error) {
      this.logger.warn({ couponId: definition.id, err: (error as Error).message }, 'coupon change not written to redis; the reconciler will apply it from mongodb');
      return 'failed';
    }
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

/** The fields that changed, before and after, as the audit trail stores them. */
export function diff(before: CouponDefinition, after: CouponDefinition): { before: Record<string, unknown>; after: Record<string, unknown> } {
  const shown = (value: unknown) => (value instanceof Date ? value.toISOString() : value);
  const fields = ['name', 'totalQuantity', 'startsAt', 'endsAt', 'redeemBy', 'openingDrawMs'] as const;
  const changed = fields.filter((field) => shown(before[field]) !== shown(after[field]));
  return {
    before: Object.fromEntries(changed.map((field) => [field, shown(before[field])])),
    after: Object.fromEntries(changed.map((field) => [field, shown(after[field])])),
  };
}
