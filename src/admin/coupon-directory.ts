/**
 * The operators' read side: coupons newest first, and a coupon's issuances in sequence order,
 * as cursor pages, and every issuance of a coupon as a MongoDB cursor for the CSV export.
 */
import { Types, type Cursor } from 'mongoose';
import { badUserInput, notFound } from '../errors';
import type { IssuanceDocument, Models } from '../mongo/models';
import { assertCouponId, toDefinition, type CouponCatalog } from '../coupons/coupon-catalog';
import type { CouponStatus, CouponView, IssuanceRecord } from '../coupons/coupon-model';
import type { CouponReader } from '../live/coupon-reader';
import { toIssuanceRecord } from '../claims/issuance-writer';
import { decodeCursor, encodeCursor, pageSize, type Page } from '../support/paging';

export const COUPON_PAGE_MAX = 100;
export const ISSUANCE_PAGE_MAX = 1000;
/** With a status of ACTIVE or SOLD_OUT (known only from Redis), at most this many coupons are read per page asked for. */
const STATUS_SCAN_FACTOR = 5;
/** The order of one_live_per_sequence after couponId: live first (no cancelKey), then cancelled ones by id. */
const ISSUANCE_ORDER = { sequence: 1, cancelKey: 1 } as const;

export class CouponDirectory {
  constructor(
    private readonly models: Models,
    private readonly catalog: CouponCatalog,
    private readonly reader: Pick<CouponReader, 'view'>,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Newest first; `status` as derived when read. */
  async coupons(status: CouponStatus | null | undefined, first: number | null | undefined, after: string | null | undefined): Promise<Page<CouponView>> {
    const size = pageSize(first, COUPON_PAGE_MAX, 20);
    const now = this.clock();
    const filter: Record<string, unknown> = {};
    if (after) filter._id = { $lt: new Types.ObjectId(decodeCursor(after, 'c')[0]) };
    // SCHEDULED and ENDED are a matter of time, so MongoDB filters them; ACTIVE and SOLD_OUT need the live stock.
    if (status === 'SCHEDULED') filter.startsAt = { $gt: now };
    else if (status === 'ENDED') Object.assign(filter, { startsAt: { $lte: now }, endsAt: { $ne: null, $lte: now } });
    else if (status) Object.assign(filter, { startsAt: { $lte: now }, $or: [{ endsAt: null }, { endsAt: { $gt: now } }] });
    const byStock = status === 'ACTIVE' || status === 'SOLD_OUT';
    const limit = byStock ? size * STATUS_SCAN_FACTOR : size + 1;
    const docs = await this.models.Coupon.find(filter).sort({ _id: -1 }).limit(limit).lean();
    const views = await Promise.all(docs.slice(0, byStock ? limit : size).map((doc) => this.reader.view(toDefinition(doc))));
    let nodes = views;
    let lastScanned = docs.at(-1)?._id.toHexString();
    let more = docs.length === limit;
    if (byStock) {
      nodes = [];
      for (const view of views) {
        if (view.status !== status) continue;
        nodes.push(view);
        if (nodes.length === size) {
          lastScanned = view.id;
          more = true;
          break;
        }
      }
    } else {
      more = docs.length > size;
      lastScanned = nodes.at(-1)?.id;
    }
    return {
      edges: nodes.map((node) => ({ cursor: encodeCursor('c', node.id), node })),
      pageInfo: { hasNextPage: more, endCursor: lastScanned ? encodeCursor('c', lastScanned) : null },
    };
  }

  /**
   * A coupon's issuances in sequence order, cancelled ones included, after the live one that reuses
   * their sequence. Sorted by (sequence, cancelKey), the unique index one_live_per_sequence, so a
   * page and the export are index-ordered reads however large the coupon (no in-memory sort).
   */
  async issuances(couponId: string, first: number | null | undefined, after: string | null | undefined): Promise<Page<IssuanceRecord>> {
    const size = pageSize(first, ISSUANCE_PAGE_MAX, 100);
    await this.assertCoupon(couponId);
    const filter: Record<string, unknown> = { couponId: new Types.ObjectId(couponId) };
    if (after) {
      // The cursor names the last sequence and whether its issuance was live ('-') or the
      // cancelled one with that id (a cancelled issuance's cancelKey is its own id).
      const [sequence, live] = decodeCursor(after, 'i');
      const seq = Number(sequence);
      if (!Number.isInteger(seq) || live === undefined) throw badUserInput('after is not a cursor of this list', 'after');
      const laterHere = live === '-' ? { cancelKey: { $ne: null } } : { cancelKey: { $gt: new Types.ObjectId(decodeCursor(after, 'i').at(-1)) } };
      filter.$or = [{ sequence: { $gt: seq } }, { sequence: seq, ...laterHere }];
    }
    const docs = await this.models.Issuance.find(filter).sort(ISSUANCE_ORDER).limit(size + 1).lean();
    const nodes = docs.slice(0, size).map(toIssuanceRecord);
    const cursorOf = (node: IssuanceRecord) => encodeCursor('i', node.sequence, node.status === 'CANCELLED' ? 'x' : '-', node.id);
    return {
      edges: nodes.map((node) => ({ cursor: cursorOf(node), node })),
      pageInfo: { hasNextPage: docs.length > size, endCursor: nodes.length ? cursorOf(nodes.at(-1)!) : null },
    };
  }

  /** Every issuance of the coupon in sequence order, streamed from MongoDB (for the CSV export). NOT_FOUND for an unknown coupon. */
  async allIssuances(couponId: string): Promise<Cursor<IssuanceDocument>> {
    await this.assertCoupon(couponId);
    return this.models.Issuance.find({ couponId: new Types.ObjectId(couponId) })
      .sort(ISSUANCE_ORDER)
      .lean()
      .cursor({ batchSize: 1000 }) as unknown as Cursor<IssuanceDocument>;
  }

  private async assertCoupon(couponId: string): Promise<void> {
    assertCouponId(couponId);
    if (!(await this.catalog.find(couponId))) throw notFound('coupon');
  }
}
