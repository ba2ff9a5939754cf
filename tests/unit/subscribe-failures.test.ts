/**
 * A failed SUBSCRIBE must not leave a part of the instance off for good: the coupon-change
 * re-validation keeps running (and the subscription is retried), and the stock feed keeps no
 * entry for a subscription that never was. Redis is replaced by fakes whose first SUBSCRIBE fails.
 */
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import pino from 'pino';
import type { CouponCatalog } from '../../src/coupons/coupon-catalog';
import type { CouponDefinition, StockSnapshot } from '../../src/coupons/coupon-model';
import { CouponChanges, COUPON_CHANGED_CHANNEL } from '../../src/coupons/coupon-changes';
import type { CouponReader } from '../../src/live/coupon-reader';
import type { Models } from '../../src/mongo/models';
import { StockFeed } from '../../src/live/stock-feed';

const COUPON_ID = '650000000000000000000001';
const silent = pino({ level: 'silent' });

/** A subscriber connection whose first `failures` SUBSCRIBE calls fail, as on a connection that is not ready. */
class FlakySubscriber extends EventEmitter {
  calls: string[] = [];
  constructor(private failures: number) {
    super();
  }
  subscribe = async (channel: string) => {
    this.calls.push(channel);
    if (this.failures-- > 0) throw new Error('Connection is closed.');
    return 1;
  };
  unsubscribe = async () => 0;
}

const until = async (check: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

test('a failed SUBSCRIBE at start-up does not turn off the 500 ms re-validation, and is retried until it succeeds', async () => {
  const subscriber = new FlakySubscriber(1);
  let revalidations = 0;
  const catalog = { inUse: () => [COUPON_ID], replace: () => {} } as unknown as CouponCatalog;
  const models = { Coupon: { find: () => ({ lean: async () => (revalidations++, []) }) } } as unknown as Models;
  const changes = new CouponChanges({} as Redis, subscriber as unknown as Redis, catalog, models, silent);
  const started = changes.start();
  try {
    await until(() => revalidations >= 2);
    await started;
    expect(subscriber.calls).toEqual([COUPON_CHANGED_CHANNEL, COUPON_CHANGED_CHANNEL]);
  } finally {
    await changes.stop();
  }
});

test('a failed stock subscribe leaves no watched entry behind: the next watcher subscribes again', async () => {
  const subscriber = new FlakySubscriber(1);
  const catalog = { find: async () => ({ id: COUPON_ID, startsAt: new Date(0), endsAt: null }) as CouponDefinition } as unknown as CouponCatalog;
  const snapshot: StockSnapshot = { couponId: COUPON_ID, remaining: 1, totalQuantity: 1, status: 'ACTIVE', epoch: 1, version: 1 };
  const reader = { snapshot: async () => snapshot } as unknown as CouponReader;
  const feed = new StockFeed({} as Redis, subscriber as unknown as Redis, catalog, reader, silent, { intervalMs: 0, recheckMs: 0 });
  try {
    await expect(feed.watch(COUPON_ID)).rejects.toThrow('Connection is closed.');
    expect(feed.subscribedCoupons()).toEqual([]);
    const stream = await feed.watch(COUPON_ID);
    expect(subscriber.calls).toHaveLength(2);
    expect(feed.subscribedCoupons()).toEqual([COUPON_ID]);
    await stream.return?.();
  } finally {
    await feed.stop();
  }
});
