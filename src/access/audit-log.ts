/**
 * The audit trail: every admin mutation, redeem and cancel, stored in MongoDB (who, what, when,
 * the changed fields before and after) and written as one log line each. Recorded after the
 * change it describes; a failed write is logged with the whole entry, never fails the change.
 */
import { Types } from 'mongoose';
import type { Logger } from 'pino';
import { badUserInput } from '../errors';
import type { Models } from '../mongo/models';
import type { Viewer } from './auth';
import { decodeCursor, encodeCursor, pageSize, type Page } from '../support/paging';

export type AuditAction = 'CREATE_COUPON' | 'UPDATE_COUPON' | 'END_COUPON' | 'REDEEM_ISSUANCE' | 'CANCEL_ISSUANCE';

export interface AuditRecord {
  id: string;
  at: Date;
  action: AuditAction;
  actorId: string;
  actorIsAdmin: boolean;
  couponId: string;
  issuanceId: string | null;
  before: string | null;
  after: string | null;
}

export interface AuditChange {
  action: AuditAction;
  actor: Viewer;
  couponId: string;
  issuanceId?: string;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
}

export const AUDIT_PAGE_MAX = 100;

export class AuditLog {
  constructor(
    private readonly models: Models,
    private readonly logger: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async record(change: AuditChange): Promise<void> {
    const entry = {
      at: this.clock(),
      action: change.action,
      actorId: change.actor.id,
      actorIsAdmin: change.actor.admin,
      couponId: new Types.ObjectId(change.couponId),
      issuanceId: change.issuanceId ? new Types.ObjectId(change.issuanceId) : null,
      before: change.before ? JSON.stringify(change.before) : null,
      after: change.after ? JSON.stringify(change.after) : null,
    };
    const line = { audit: change.action, actor: change.actor.id, admin: change.actor.admin, couponId: change.couponId, issuanceId: change.issuanceId, before: change.before, after: change.after };
    try {
      await this.models.AuditEntry.create(entry);
      this.logger.info(line, 'audit');
    } catch (error) {
      this.logger.error({ ...line, err: (error as Error).message }, 'audit entry could not be stored; this line is its only record');
    }
  }

  /** Newest first; only one coupon's entries when couponId is given. */
  async page(couponId: string | null | undefined, first: number | null | undefined, after: string | null | undefined): Promise<Page<AuditRecord>> {
    const size = pageSize(first, AUDIT_PAGE_MAX, 50);
    const filter: Record<string, unknown> = {};
    if (couponId) {
      if (!Types.ObjectId.isValid(couponId) || !/^[0-9a-f]{24}$/i.test(couponId)) throw badUserInput('couponId is not a valid coupon id', 'couponId');
      filter.couponId = new Types.ObjectId(couponId);
    }
    if (after) filter._id = { $lt: new Types.ObjectId(decodeCursor(after, 'a')[0]) };
    const docs = await this.models.AuditEntry.find(filter).sort({ _id: -1 }).limit(size + 1).lean();
    const nodes = docs.slice(0, size).map((doc) => ({
      id: doc._id.toHexString(),
      at: doc.at,
      action: doc.action as AuditAction,
      actorId: doc.actorId,
      actorIsAdmin: doc.actorIsAdmin,
      couponId: doc.couponId.toHexString(),
      issuanceId: doc.issuanceId ? doc.issuanceId.toHexString() : null,
      before: doc.before ?? null,
      after: doc.after ?? null,
    }));
    return {
      edges: nodes.map((node) => ({ cursor: encodeCursor('a', node.id), node })),
      pageInfo: { hasNextPage: docs.length > size, endCursor: nodes.length ? encodeCursor('a', nodes.at(-1)!.id) : null },
    };
  }
}
