/**
 * The last change of a coupon's stock reaches watchers without depending on one instance's
 * coalescing timer: a graceful stop publishes what waits, and watchers' own instance rechecks.
 * Redis, the catalog and the reader are fakes (tests/integration/faults/stock-after-faults.test.ts
 * runs the real thing with instances killed).
 */
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import pino from 'pino';
import type { CouponCatalog } from '../../src/coupons/coupon-catalog';
import type { CouponDefinition, StockSnapshot } from '../../src/coupons/coupon-model';
import type { CouponReader } from '../../src/live/coupon-reader';
import { StockFeed } from '../../src/live/stock-feed';

const COUPON_ID = '650000000000000000000002';

class FakeSubscriber extends EventEmitter {
  subscribe = async () => 1;
  unsubscribe = async () => 0;
}

function feedOn(stock: { version: number }, options: { intervalMs: number; recheckMs?: number }) {
  const published: StockSnapshot[] = [];
  const publisher = { publish: async (_channel: string, message: string) => void published.push(JSON.parse(message) as StockSnapshot) };
  const catalog = { find: async () => ({ id: COUPON_ID, startsAt: new Date(0), endsAt: null }) as CouponDefinition } as unknown as CouponCatalog;
  const reader = {
    snapshot: async (): Promise<StockSnapshot> => ({
      couponId: COUPON_ID,
      remaining: 10 - stock.version,
      totalQuantity: 10,
      status: stock.version >= 10 ? 'SOLD_OUT' : 'ACTIVE',
      epoch: 1,
      version: stock.version,
    }),
  } as unknown as CouponReader;
  const feed = new StockFeed(publisher as unknown as Redis, new FakeSubscriber() as unknown as Redis, catalog, reader, pino({ level: 'silent' }), options);
  return { feed, published };
}

test('a graceful stop publishes the change still waiting in the coalescing window before it resolves', async () => {
  const stock = { version: 9 };
  const { feed, published } = feedOn(stock, { intervalMs: 60_000, recheckMs: 0 });
  feed.changed(COUPON_ID);
  await new Promise((resolve) => setImmediate(resolve));
  expect(published.map((s) => s.remaining)).toEqual([1]);
  stock.version = 10;
  feed.changed(COUPON_ID);
  await feed.stop();
  expect(published.map((s) => [s.remaining, s.status])).toEqual([
    [1, 'ACTIVE'],
    [0, 'SOLD_OUT'],
  ]);
  // A claim still in flight during the stop publishes too, until the last flush.
  stock.version = 11;
  feed.changed(COUPON_ID);
  await feed.flush();
  expect(published).toHaveLength(3);
  feed.changed(COUPON_ID);
  await feed.flush();
  expect(published).toHaveLength(3);
});

test('a change nobody publishes reaches local watchers through the recheck, once', async () => {
  const stock = { version: 9 };
  const { feed } = feedOn(stock, { intervalMs: 20, recheckMs: 50 });
  const stream = await feed.watch(COUPON_ID);
  expect((await stream.next()).value).toMatchObject({ remaining: 1, status: 'ACTIVE' });
  // Another instance sold the last unit and died before publishing it.
  stock.version = 10;
  const started = Date.now();
  expect((await stream.next()).value).toMatchObject({ remaining: 0, status: 'SOLD_OUT' });
  expect(Date.now() - started).toBeLessThan(1000);
  // Rechecks that find nothing newer send nothing.
  const more = stream.next();
  const nothing = await Promise.race([more.then(() => 'sent'), new Promise((resolve) => setTimeout(() => resolve('nothing'), 300))]);
  expect(nothing).toBe('nothing');
  await feed.stop();
});
