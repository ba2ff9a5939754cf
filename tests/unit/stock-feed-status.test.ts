/**
 * Status by the clock in the stock feed, with Redis, the catalog and the reader replaced by fakes:
 * one status timer per watched coupon (not per subscriber), armed for the next boundary, re-armed
 * when the definition changes; same-position snapshots ordered by status phase.
 */
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import pino from 'pino';
import type { CouponCatalog } from '../../src/coupons/coupon-catalog';
import { couponStatus, type CouponDefinition, type StockSnapshot } from '../../src/coupons/coupon-model';
import type { CouponReader } from '../../src/live/coupon-reader';
import { nextStatusChange, StockFeed, supersedes } from '../../src/live/stock-feed';

const COUPON_ID = '650000000000000000000002';

class FakeSubscriber extends EventEmitter {
  subscribe = async () => 1;
  unsubscribe = async () => 0;
}

/** A feed whose only way to notice a status change is its status timer (no recheck, no messages). */
function feedFor(definition: CouponDefinition) {
  const catalog = { find: async () => definition } as unknown as CouponCatalog;
  let reads = 0;
  const reader = {
    snapshot: async (d: CouponDefinition): Promise<StockSnapshot> => {
      reads++;
      return { couponId: COUPON_ID, remaining: 3, totalQuantity: 3, status: couponStatus(d, 3, new Date()), epoch: 1, version: 1 };
    },
  } as unknown as CouponReader;
  const publisher = { publish: async () => 1 } as unknown as Redis;
  const feed = new StockFeed(publisher, new FakeSubscriber() as unknown as Redis, catalog, reader, pino({ level: 'silent' }), { intervalMs: 0, recheckMs: 0 });
  return { feed, reads: () => reads };
}

async function collect(stream: AsyncIterableIterator<StockSnapshot>, into: Array<{ status: string; at: number }>) {
  for await (const snapshot of stream) into.push({ status: snapshot.status, at: Date.now() });
}

describe('status pushed by the clock', () => {
  test('the next boundary is startsAt while scheduled, then endsAt, then none', () => {
    const definition = { startsAt: new Date(1000), endsAt: new Date(2000) };
    expect(nextStatusChange(definition, 500)).toBe(1000);
    expect(nextStatusChange(definition, 1000)).toBe(2000);
    expect(nextStatusChange(definition, 2000)).toBeUndefined();
    expect(nextStatusChange({ startsAt: new Date(1000), endsAt: null }, 1500)).toBeUndefined();
  });

  test('at the same stock position a later status supersedes an earlier one, never the reverse', () => {
    const at = (status: StockSnapshot['status'], version = 1): StockSnapshot => ({ couponId: COUPON_ID, remaining: 1, totalQuantity: 1, status, epoch: 1, version });
    expect(supersedes(at('ACTIVE'), at('SCHEDULED'))).toBe(true);
    expect(supersedes(at('ENDED'), at('ACTIVE'))).toBe(true);
    expect(supersedes(at('ENDED'), at('SOLD_OUT'))).toBe(true);
    expect(supersedes(at('SCHEDULED'), at('ACTIVE'))).toBe(false);
    expect(supersedes(at('ACTIVE'), at('ACTIVE'))).toBe(false);
    expect(supersedes(at('SCHEDULED', 2), at('ENDED', 1))).toBe(true);
    expect(supersedes(at('ENDED', 1), at('SCHEDULED', 2))).toBe(false);
  });

  test('one timer per coupon moves every subscriber from SCHEDULED to ACTIVE to ENDED, with one read per boundary, then completes them', async () => {
    const now = Date.now();
    const definition: CouponDefinition = { id: COUPON_ID, name: 'x', totalQuantity: 3, startsAt: new Date(now + 300), endsAt: new Date(now + 600), redeemBy: null };
    const { feed, reads } = feedFor(definition);
    const seen: Array<Array<{ status: string; at: number }>> = [[], [], []];
    await Promise.all(seen.map(async (into) => collect(await feed.watch(COUPON_ID), into)));
    for (const events of seen) {
      expect(events.map((e) => e.status)).toEqual(['SCHEDULED', 'ACTIVE', 'ENDED']);
      expect(events[1]!.at - definition.startsAt.getTime()).toBeLessThan(200);
      expect(events[2]!.at - definition.endsAt!.getTime()).toBeLessThan(200);
    }
    // One read per subscribe, then one per boundary for all three subscribers.
    expect(reads()).toBe(seen.length + 2);
    expect(feed.subscribedCoupons()).toEqual([]);
    await feed.stop();
  });

  test('statusMayHaveChanged re-arms the timer for a moved boundary and pushes an end at once', async () => {
    const now = Date.now();
    const definition: CouponDefinition = { id: COUPON_ID, name: 'x', totalQuantity: 3, startsAt: new Date(now + 60_000), endsAt: null, redeemBy: null };
    const { feed } = feedFor(definition);
    const events: Array<{ status: string; at: number }> = [];
    const done = collect(await feed.watch(COUPON_ID), events);
    // An operator moves the start to now + 200 ms, then ends the coupon at now + 400 ms.
    definition.startsAt = new Date(Date.now() + 200);
    feed.statusMayHaveChanged(COUPON_ID);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(events.map((e) => e.status)).toEqual(['SCHEDULED', 'ACTIVE']);
    definition.endsAt = new Date(Date.now() - 1);
    const endedAt = Date.now();
    feed.statusMayHaveChanged(COUPON_ID);
    await done;
    expect(events.map((e) => e.status)).toEqual(['SCHEDULED', 'ACTIVE', 'ENDED']);
    expect(events[2]!.at - endedAt).toBeLessThan(200);
    await feed.stop();
  });
});
