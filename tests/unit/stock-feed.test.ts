/**
 * Delivery of stock updates to many local subscribers, with Redis, the catalog and the reader
 * replaced by fakes (tests/integration/stock-subscriptions.test.ts runs the real thing).
 */
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import pino from 'pino';
import type { CouponCatalog } from '../../src/coupons/coupon-catalog';
import type { CouponDefinition, StockSnapshot } from '../../src/coupons/coupon-model';
import type { CouponReader } from '../../src/live/coupon-reader';
import { stockChannel } from '../../src/redis/scripts';
import { DELIVERY_SLICE, StockFeed } from '../../src/live/stock-feed';

const COUPON_ID = '650000000000000000000001';
const SUBSCRIBERS = 5 * DELIVERY_SLICE;

const snapshotAt = (version: number): StockSnapshot => ({ couponId: COUPON_ID, remaining: 100 - version, totalQuantity: 100, status: 'ACTIVE', epoch: 1, version });

/** A Redis subscriber connection as far as the feed uses one: messages come from the test. */
class FakeSubscriber extends EventEmitter {
  subscribe = async () => 1;
  unsubscribe = async () => 0;
  publishToFeed(version: number) {
    this.emit('message', stockChannel(COUPON_ID), JSON.stringify(snapshotAt(version)));
  }
}

/** Runs what is queued for this turn (nextTicks, promise reactions), but not the next turn. */
const endOfTurn = () => new Promise((resolve) => process.nextTick(resolve));
const nextTurns = async (turns: number) => {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** The throttle is not under test here: interval 0 hands each update on at once. */
async function feedWithSubscribers() {
  const subscriber = new FakeSubscriber();
  const catalog = { find: async () => ({ id: COUPON_ID, startsAt: new Date(0), endsAt: null }) as CouponDefinition } as unknown as CouponCatalog;
  const reader = { snapshot: async () => snapshotAt(1) } as unknown as CouponReader;
  const feed = new StockFeed({} as Redis, subscriber as unknown as Redis, catalog, reader, pino({ level: 'silent' }), { intervalMs: 0 });
  // The versions each subscriber was handed, in order.
  const seen: number[][] = [];
  for (let i = 0; i < SUBSCRIBERS; i++) {
    const stream = await feed.watch(COUPON_ID);
    const versions: number[] = [];
    seen.push(versions);
    void (async () => {
      for await (const snapshot of stream) versions.push(snapshot.version);
    })();
  }
  await nextTurns(2);
  return { feed, subscriber, seen };
}

describe('stock updates to many subscribers on one instance', () => {
  test('reach them a slice per event-loop turn, so claims are served in between, and reach every one', async () => {
    const { feed, subscriber, seen } = await feedWithSubscribers();
    expect(seen.every((versions) => versions.join() === '1')).toBe(true);

    subscriber.publishToFeed(2);
    await endOfTurn();
    expect(seen.filter((versions) => versions.at(-1) === 2)).toHaveLength(DELIVERY_SLICE);

    await nextTurns(SUBSCRIBERS / DELIVERY_SLICE);
    expect(seen.every((versions) => versions.join() === '1,2')).toBe(true);
    await feed.stop();
  });

  test('an update arriving during a pass reaches every subscriber, and none is handed an older one after it', async () => {
    const { feed, subscriber, seen } = await feedWithSubscribers();

    subscriber.publishToFeed(2);
    await endOfTurn();
    subscriber.publishToFeed(3);
    await nextTurns(2 * (SUBSCRIBERS / DELIVERY_SLICE) + 2);

    for (const versions of seen) {
      expect(versions.at(-1)).toBe(3);
      expect(versions).toEqual([...versions].sort((a, b) => a - b));
    }
    // The first slice had version 2 before 3 came in; the rest went straight to 3.
    expect(seen.filter((versions) => versions.join() === '1,2,3')).toHaveLength(DELIVERY_SLICE);
    await feed.stop();
  });
});
