/**
 * The final state of a coupon (SOLD_OUT, ENDED) does not wait for the coalescing windows: the
 * claim that takes the last unit is published at once, and a final snapshot is delivered at once
 * on receipt, still never after a newer one. Redis, the catalog and the reader are fakes
 * (tests/integration/stock-subscriptions.test.ts runs the real thing).
 */
import { EventEmitter } from 'node:events';
import pino from 'pino';
import type { CouponCatalog } from '../../src/coupons/coupon-catalog';
import type { CouponDefinition, StockSnapshot } from '../../src/coupons/coupon-model';
import type { CouponReader } from '../../src/live/coupon-reader';
import type { StockPublisher, StockSubscriber } from '../../src/redis/pubsub';
import { stockChannel } from '../../src/redis/scripts';
import { StockFeed } from '../../src/live/stock-feed';

const COUPON_ID = '650000000000000000000001';
/** Long enough that anything delivered during a test went past the coalescing window. */
const INTERVAL_MS = 60_000;

const snapshotAt = (version: number, remaining: number): StockSnapshot => ({
  couponId: COUPON_ID,
  remaining,
  totalQuantity: 10,
  status: remaining === 0 ? 'SOLD_OUT' : 'ACTIVE',
  epoch: 1,
  version,
});

class FakeSubscriber extends EventEmitter {
  subscribe = async () => 1;
  unsubscribe = async () => 0;
  send(snapshot: StockSnapshot) {
    this.emit('message', stockChannel(COUPON_ID), JSON.stringify(snapshot));
  }
}

const turns = async (count: number) => {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
};

function feedWith(current: () => StockSnapshot) {
  const subscriber = new FakeSubscriber();
  const published: StockSnapshot[] = [];
  const publisher = { publish: async (_channel: string, message: string) => void published.push(JSON.parse(message) as StockSnapshot) };
  const catalog = { find: async () => ({ id: COUPON_ID, startsAt: new Date(0), endsAt: null }) as CouponDefinition } as unknown as CouponCatalog;
  const reader = { snapshot: async () => current() } as unknown as CouponReader;
  const feed = new StockFeed(publisher as unknown as StockPublisher, subscriber as unknown as StockSubscriber, catalog, reader, pino({ level: 'silent' }), {
    intervalMs: INTERVAL_MS,
    recheckMs: 0,
  });
  return { feed, subscriber, published };
}

describe('the final state of a coupon', () => {
  test('the claim that takes the last unit is published at once, though an earlier change is still waiting for its interval', async () => {
    let stock = snapshotAt(1, 2);
    const { feed, published } = feedWith(() => stock);
    feed.changed(COUPON_ID, 2);
    await turns(3);
    expect(published.map((s) => s.remaining)).toEqual([2]);

    stock = snapshotAt(2, 1);
    feed.changed(COUPON_ID, 1);
    await turns(3);
    // Coalesced: waits for the interval.
    expect(published.map((s) => s.remaining)).toEqual([2]);

    stock = snapshotAt(3, 0);
    feed.changed(COUPON_ID, 0);
    await turns(3);
    expect(published.map((s) => s.remaining)).toEqual([2, 0]);
    expect(published.at(-1)!.status).toBe('SOLD_OUT');
    await feed.flush();
    await feed.stop();
  });

  test('SOLD_OUT reaches every watcher at once, an update waiting for its interval is skipped, and an older one arriving later is never handed on', async () => {
    const { feed, subscriber } = feedWith(() => snapshotAt(1, 9));
    const seen: number[][] = [];
    for (let i = 0; i < 500; i++) {
      const stream = await feed.watch(COUPON_ID);
      const remaining: number[] = [];
      seen.push(remaining);
      void (async () => {
        for await (const snapshot of stream) remaining.push(snapshot.remaining);
      })();
    }
    await turns(5);
    expect(seen.every((r) => r.join() === '9')).toBe(true);

    subscriber.send(snapshotAt(2, 5));
    await turns(5);
    // Within the interval of the first delivery: held back, to be coalesced.
    expect(seen.every((r) => r.join() === '9')).toBe(true);

    subscriber.send(snapshotAt(3, 0));
    subscriber.send(snapshotAt(2, 5));
    await turns(10);
    for (const remaining of seen) expect(remaining).toEqual([9, 0]);
    await feed.stop();
  });

  test('an older state arriving after SOLD_OUT was handed on is ignored', async () => {
    const { feed, subscriber } = feedWith(() => snapshotAt(1, 9));
    const stream = await feed.watch(COUPON_ID);
    const remaining: number[] = [];
    void (async () => {
      for await (const snapshot of stream) remaining.push(snapshot.remaining);
    })();
    await turns(3);
    subscriber.send(snapshotAt(5, 0));
    await turns(3);
    subscriber.send(snapshotAt(4, 1));
    await turns(3);
    expect(remaining).toEqual([9, 0]);
    await feed.stop();
  });
});
