/**
 * Group commit of issuances to MongoDB. Concurrent winners are written together: the first
 * write opens a window of a few milliseconds, everything that arrives in it goes out as one
 * ordered bulkWrite, and every waiting claim is answered when that batch is acknowledged.
 *
 * Each write is a plain insert of an issuance whose id was chosen before the claim: the unique
 * indexes on (couponId, userId) and (couponId, sequence) turn a repeated write (a retry, the
 * reconciler racing a claim) or a disagreement with Redis into an outcome, never a second copy.
 */
import { Types } from 'mongoose';
import { DependencyError } from '../errors';
import { DUPLICATE_KEY, LIVE, type IssuanceDocument, type Models } from '../mongo/models';
import type { IssuanceRecord, IssuanceStatus } from '../coupons/coupon-model';
import { activeSpanContext, withGroupCommitSpan, type SpanContext } from '../tracing/tracer';

export type WriteOutcome =
  /**
   * MongoDB holds exactly this issuance. `stored`: it was there already (a retried write, or a
   * winner Redis lost the confirmation of), as MongoDB holds it now: it may have been redeemed since.
   */
  | { kind: 'written'; stored?: IssuanceRecord }
  /** The user already held a different issuance of this coupon. */
  | { kind: 'user-holds'; stored: IssuanceRecord }
  /** Another user holds this sequence. */
  | { kind: 'sequence-taken'; holder: IssuanceRecord }
  /**
   * This very issuance is stored, and CANCELLED: its write landed, then it was cancelled while
   * Redis could not hear of it. It must not come back; its reservation goes like a cancel's.
   */
  | { kind: 'cancelled' };

export interface IssuanceWriterOptions {
  windowMs: number;
  maxBatch: number;
  /** Batches allowed in flight at once; further writes wait in the queue. */
  maxConcurrentBatches?: number;
  /** Writes allowed to wait; beyond it a write fails at once instead of queueing without bound. */
  maxQueued?: number;
  onBatch?: (size: number, waitedMs: number, durationMs: number, failed: boolean) => void;
}

interface QueuedWrite {
  record: IssuanceRecord;
  queuedAt: number;
  resolve: (outcome: WriteOutcome) => void;
  reject: (error: Error) => void;
  /** The claim's span, for the group commit's links (tracing on only). */
  caller?: SpanContext;
}

type StoredIssuance = Pick<IssuanceDocument, '_id' | 'couponId' | 'userId' | 'sequence' | 'issuedAt'> &
  Partial<Pick<IssuanceDocument, 'status' | 'redeemedAt' | 'orderId' | 'cancelledAt'>>;

/** A stored issuance as the API shows it; one without a status (written before version 2) is ACTIVE. */
export function toIssuanceRecord(doc: StoredIssuance): IssuanceRecord {
  return {
    id: doc._id.toHexString(),
    couponId: doc.couponId.toHexString(),
    userId: doc.userId,
    sequence: doc.sequence,
    issuedAt: doc.issuedAt,
    status: (doc.status as IssuanceStatus | null | undefined) ?? 'ACTIVE',
    redeemedAt: doc.redeemedAt ?? null,
    orderId: doc.orderId ?? null,
    cancelledAt: doc.cancelledAt ?? null,
  };
}

export class IssuanceWriter {
  private queue: QueuedWrite[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private readonly idle: Array<() => void> = [];
  private readonly maxConcurrent: number;
  private readonly maxQueued: number;

  constructor(
    private readonly models: Models,
    private readonly options: IssuanceWriterOptions,
  ) {
    this.maxConcurrent = options.maxConcurrentBatches ?? 2;
    this.maxQueued = options.maxQueued ?? 20_000;
  }

  write(record: IssuanceRecord): Promise<WriteOutcome> {
    if (this.queue.length >= this.maxQueued) {
      return Promise.reject(new DependencyError('mongodb', 'issuance write queue is full'));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ record, queuedAt: performance.now(), resolve, reject, caller: activeSpanContext() });
      if (this.queue.length >= this.options.maxBatch) this.flushSoon(0);
      else this.flushSoon(this.options.windowMs);
    });
  }

  /** Resolves once nothing is queued or in flight (graceful shutdown). */
  drained(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private flushSoon(delayMs: number): void {
    if (delayMs === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, delayMs);
    }
  }

  private flush(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxConcurrent) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.inFlight += 1;
      void withGroupCommitSpan(batch.map((w) => w.caller), () => this.commit(batch)).finally(() => {
        this.inFlight -= 1;
        if (this.queue.length > 0) this.flushSoon(0);
        else if (this.inFlight === 0) this.idle.splice(0).forEach((resolve) => resolve());
      });
    }
  }

  private async commit(batch: QueuedWrite[]): Promise<void> {
    const started = performance.now();
    const waitedMs = started - batch[0]!.queuedAt;
    try {
      const outcomes = await this.writeBatch(batch.map((w) => w.record));
      batch.forEach((w, i) => w.resolve(outcomes[i]!));
      this.options.onBatch?.(batch.length, waitedMs, performance.now() - started, false);
    } catch (cause) {
      const error = new DependencyError('mongodb', 'issuance batch write failed', { cause });
      batch.forEach((w) => w.reject(error));
      this.options.onBatch?.(batch.length, waitedMs, performance.now() - started, true);
    }
  }

  private async writeBatch(records: IssuanceRecord[]): Promise<WriteOutcome[]> {
    try {
      await this.models.Issuance.bulkWrite(records.map(insertOf), { ordered: true });
      return records.map(() => ({ kind: 'written' }));
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      // Someone in the batch is already stored or disagrees with MongoDB: settle each write on
      // its own. Writes of the batch that did land are recognised by their id.
      return Promise.all(records.map((record) => this.writeOne(record)));
    }
  }

  /** The issuance as MongoDB holds it now (whatever its status), or null. */
  async stored(issuanceId: string): Promise<IssuanceRecord | null> {
    const doc = await this.models.Issuance.findById(new Types.ObjectId(issuanceId)).lean();
    return doc ? toIssuanceRecord(doc) : null;
  }

  private async writeOne(record: IssuanceRecord): Promise<WriteOutcome> {
    try {
      await this.models.Issuance.bulkWrite([insertOf(record)], { ordered: true });
      return { kind: 'written' };
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
    }
    const couponId = new Types.ObjectId(record.couponId);
    const stored = await this.models.Issuance.findOne({ couponId, userId: record.userId, ...LIVE }).lean();
    if (stored) {
      const existing = toIssuanceRecord(stored);
      return existing.id === record.id ? { kind: 'written', stored: existing } : { kind: 'user-holds', stored: existing };
    }
    const holder = await this.models.Issuance.findOne({ couponId, sequence: record.sequence, ...LIVE }).lean();
    if (holder) return { kind: 'sequence-taken', holder: toIssuanceRecord(holder) };
    // Nothing live conflicts: the duplicate is the issuance's own id, stored and since cancelled.
    const itself = await this.models.Issuance.findById(new Types.ObjectId(record.id)).select({ status: 1, cancelKey: 1 }).lean();
    if (itself && (itself.cancelKey || itself.status === 'CANCELLED')) return { kind: 'cancelled' };
    throw new Error(`issuance ${record.id} refused as a duplicate but nothing conflicting is stored`);
  }
}

/**
 * A plain insert: the unique indexes reject any second copy, and a retry of the same issuance
 * is recognised by its id. (Upserts would say the same, but cost a lookup per write.)
 */
function insertOf(record: IssuanceRecord) {
  return {
    insertOne: {
      document: {
        _id: new Types.ObjectId(record.id),
        couponId: new Types.ObjectId(record.couponId),
        userId: record.userId,
        sequence: record.sequence,
        issuedAt: record.issuedAt,
        status: 'ACTIVE',
        ...(record.lastUnit ? { lastUnit: true } : {}),
      },
    },
  };
}

export function isDuplicateKey(error: unknown): boolean {
  const e = error as { code?: number; writeErrors?: Array<{ code?: number }> } | null;
  return e?.code === DUPLICATE_KEY || !!e?.writeErrors?.some?.((w) => w.code === DUPLICATE_KEY);
}
