/**
 * Fault: live stock after the instance that changed it is gone, or after a repair changed it.
 * The contract: the last change (0 and SOLD_OUT) is always delivered, on every instance, whichever
 * instance served the claim; a unit that comes back shows as a higher `remaining` within 1 s.
 * Each watcher here sits on instance B, which stays up; the claims and the faults hit others.
 */
import type { Client } from 'graphql-ws';
import { Redis } from 'ioredis';
import { startChildService, type ChildService } from '../../support/child-service';
import { COUPON, createCoupon } from '../../support/graphql';
import { adminToken, startStack, userToken, type Stack } from '../../support/stack';
import { watchStock, wsClient, type StockEvent } from '../../support/subscriptions';
import { claimAs, expectConverges, openModels, postGraphQL, within, type MongoView } from './contract';

let stack: Stack;
let watching: ChildService;
let mongo: MongoView;
let client: Client;
let redis: Redis;
const env = { RECONCILE_INTERVAL_MS: '200' };

beforeAll(async () => {
  stack = await startStack();
  [watching, mongo] = await Promise.all([startChildService({ redisUrl: stack.redis.url, mongoUri: stack.mongo.url, env }), openModels(stack.mongo.url)]);
  client = wsClient(watching.url);
  redis = new Redis(stack.redis.url);
});

afterAll(async () => {
  stack?.mongo.signal('SIGCONT');
  await client?.dispose();
  redis?.disconnect();
  await watching?.stop();
  await mongo?.close();
  await stack?.stop();
});

const soldOut = (event: StockEvent) => event.remaining === 0 && event.status === 'SOLD_OUT';

/**
 * A coupon of 10 watched on B; instance A sells 9 units, then the 10th right after the 9th, so
 * that A's update for the last one waits in A's 100 ms coalescing window, and `end` hits A the
 * moment the 10th ISSUED arrives. Returns how long after that B's watcher saw 0 / SOLD_OUT.
 */
async function lastUnitSoldByADyingInstance(name: string, end: (seller: ChildService) => Promise<unknown>) {
  const seller = await startChildService({ redisUrl: stack.redis.url, mongoUri: stack.mongo.url, env });
  const couponId = await createCoupon(seller.url, await adminToken(), { name, totalQuantity: 10 });
  const watcher = watchStock(client, couponId);
  try {
    await watcher.until((event) => event.remaining === 10);
    const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => userToken(`${name}-${i}`)));
    for (let i = 0; i < 8; i++) expect((await claimAs(seller.url, couponId, `${name}-${i}`, tokens[i]!)).status).toBe('ISSUED');
    await watcher.until((event) => event.remaining === 2);
    expect((await claimAs(seller.url, couponId, `${name}-8`, tokens[8]!)).status).toBe('ISSUED');
    expect((await claimAs(seller.url, couponId, `${name}-9`, tokens[9]!)).status).toBe('ISSUED');
    const ended = performance.now();
    await end(seller);

    const read = await postGraphQL(watching.url, COUPON, { id: couponId });
    expect(read.data!.coupon).toMatchObject({ remaining: 0, status: 'SOLD_OUT' });
    await watcher.until(soldOut, 3000);
    const deliveredMs = performance.now() - ended;
    // Never an older value after a newer one.
    const remainings = watcher.events.map((event) => event.remaining);
    expect(remainings).toEqual([...remainings].sort((a, b) => b - a));
    return deliveredMs;
  } finally {
    watcher.stop();
    await seller.kill9();
  }
}

test('the last unit sold by an instance that is killed (kill -9) inside its coalescing window still reaches watchers on other instances as 0 / SOLD_OUT', async () => {
  const ms = await lastUnitSoldByADyingInstance('killed-seller', (seller) => seller.kill9());
  console.log(`stock after a seller's kill -9: B's watcher saw SOLD_OUT ${ms.toFixed(0)} ms after the kill`);
});

test('the last unit sold by an instance stopped gracefully (SIGTERM) inside its coalescing window still reaches watchers on other instances', async () => {
  const ms = await lastUnitSoldByADyingInstance('stopped-seller', (seller) => seller.stop());
  console.log(`stock after a seller's SIGTERM: B's watcher saw SOLD_OUT ${ms.toFixed(0)} ms after the stop began`);
});

test('stock that a rebuild from MongoDB gives back (reservations lost with Redis during a MongoDB stall) is pushed to watchers', async () => {
  const total = 10;
  const couponId = await createCoupon(watching.url, await adminToken(), { name: 'Comes back', totalQuantity: total });
  const watcher = watchStock(client, couponId);
  try {
    const tokens = await Promise.all(Array.from({ length: total }, (_, i) => userToken(`back-${i}`)));
    for (let i = 0; i < 6; i++) expect((await claimAs(watching.url, couponId, `back-${i}`, tokens[i]!)).status).toBe('ISSUED');
    await watcher.until((event) => event.remaining === 4);

    // MongoDB stalls long enough for the driver to give up on it: the writes below are never sent.
    stack.mongo.signal('SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const during = await Promise.all([6, 7, 8, 9].map((i) => claimAs(watching.url, couponId, `back-${i}`, tokens[i]!)));
    expect(during.map((a) => a.code)).toEqual(Array(4).fill('SERVICE_UNAVAILABLE'));
    // The reservations hold the stock in Redis meanwhile: watchers see it sold out.
    await watcher.until(soldOut);
    // Every update of those claims is out (the coalescing window is 100 ms) before Redis loses its data.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await redis.flushall();
    stack.mongo.signal('SIGCONT');

    await expectConverges(watching.url, mongo.models, couponId, total);
    const back = (await postGraphQL(watching.url, COUPON, { id: couponId })).data!.coupon as { remaining: number; status: string };
    // The scenario itself: the unwritten reservations went with Redis, so units came back.
    expect(back.remaining).toBeGreaterThan(0);
    expect(back.status).toBe('ACTIVE');
    const started = performance.now();
    // What the watcher shows now, not an event from before the stall with the same figure.
    const showing = () => watcher.events.at(-1)!;
    await within(3000, `the watcher shows ${back.remaining} / ACTIVE`, async () => showing().remaining === back.remaining && showing().status === 'ACTIVE', 20);
    console.log(`stock after a rebuild: ${back.remaining} units came back; the watcher saw them ${(performance.now() - started).toFixed(0)} ms after the coupon read them`);
  } finally {
    watcher.stop();
    stack.mongo.signal('SIGCONT');
  }
});
