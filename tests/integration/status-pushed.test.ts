/**
 * Status pushed on time (contract v2): a watcher of a SCHEDULED coupon sees ACTIVE within 1 s after
 * startsAt and ENDED within 1 s after endsAt, with no claim in between, on every instance; after
 * ENDED the subscription completes. Every update carries the server's clock. A subscription sent
 * over HTTP is refused with 400 BAD_REQUEST and nothing runs.
 */
import type { RunningService } from '../../src/service';
import { createCoupon, gql } from '../support/graphql';
import { postJson } from '../support/http';
import { adminToken, startStack, startTestService, type Stack } from '../support/stack';
import { wsClient } from '../support/subscriptions';

let stack: Stack;
let serving: RunningService;
let watching: RunningService;
let admin: string;

beforeAll(async () => {
  stack = await startStack();
  [serving, watching] = await Promise.all([startTestService(stack), startTestService(stack)]);
  admin = await adminToken();
});

afterAll(async () => {
  await Promise.all([serving?.stop(), watching?.stop()]);
  await stack?.stop();
});

const WITH_TIME = `subscription Stock($couponId: ID!) {
  stockChanged(couponId: $couponId) { couponId remaining status serverTime }
}`;

interface Timed {
  status: string;
  remaining: number;
  serverTime: string;
  /** When this test process received it. */
  receivedAt: number;
}

/** Every event of one subscription, with its arrival time, and whether the server completed it. */
function record(baseUrl: string, couponId: string) {
  const client = wsClient(baseUrl);
  const events: Timed[] = [];
  const errors: unknown[] = [];
  let completed = false;
  const done = new Promise<void>((resolve) => {
    client.subscribe<{ stockChanged: Omit<Timed, 'receivedAt'> }>(
      { query: WITH_TIME, variables: { couponId } },
      {
        next: (result) => {
          if (result.errors) errors.push(...result.errors);
          if (result.data) events.push({ ...result.data.stockChanged, receivedAt: Date.now() });
        },
        error: (error) => (errors.push(error), resolve()),
        complete: () => ((completed = true), resolve()),
      },
    );
  });
  return { events, errors, done, completed: () => completed, dispose: () => client.dispose() };
}

/** Waits for `work` at most `ms`; the assertions that follow say what was missing. */
async function within(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

test('endCoupon on one instance pushes ENDED to watchers on both instances within 1 s, and their subscriptions complete', async () => {
  const couponId = await createCoupon(serving.url, admin, { name: 'Ended by hand', totalQuantity: 5 });
  const watchers = [record(serving.url, couponId), record(watching.url, couponId)];
  // Both watchers hold the current state first.
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && !watchers.every((w) => w.events.length > 0)) await new Promise((r) => setTimeout(r, 20));
  const endedAt = Date.now();
  const ended = await gql(serving.url, 'mutation End($id: ID!) { endCoupon(id: $id) { status } }', { id: couponId }, admin);
  expect(ended.data?.endCoupon).toEqual({ status: 'ENDED' });
  await within(Promise.all(watchers.map((w) => w.done)), 3000);
  for (const watcher of watchers) {
    expect(watcher.errors).toEqual([]);
    expect(watcher.events.map((e) => e.status)).toEqual(['ACTIVE', 'ENDED']);
    expect(watcher.events.at(-1)!.receivedAt - endedAt).toBeLessThan(1000);
    expect(watcher.completed()).toBe(true);
    watcher.dispose();
  }
});

test('a watcher of a scheduled coupon sees ACTIVE within 1 s after startsAt and ENDED within 1 s after endsAt, on every instance, then the subscription completes', async () => {
  const startsAt = Date.now() + 2000;
  const endsAt = startsAt + 2000;
  const couponId = await createCoupon(serving.url, admin, { name: 'On time', totalQuantity: 5, startsAt: new Date(startsAt).toISOString(), endsAt: new Date(endsAt).toISOString() });
  // Two watchers on each instance: one status timer per coupon per instance serves both.
  const watchers = [record(serving.url, couponId), record(serving.url, couponId), record(watching.url, couponId), record(watching.url, couponId)];
  await within(Promise.all(watchers.map((w) => w.done)), endsAt - Date.now() + 5000);

  for (const watcher of watchers) {
    expect(watcher.errors).toEqual([]);
    expect(watcher.events.map((e) => e.status)).toEqual(['SCHEDULED', 'ACTIVE', 'ENDED']);
    const [, active, ended] = watcher.events;
    expect(active!.receivedAt).toBeGreaterThanOrEqual(startsAt - 50);
    expect(active!.receivedAt - startsAt).toBeLessThan(1000);
    expect(ended!.receivedAt).toBeGreaterThanOrEqual(endsAt - 50);
    expect(ended!.receivedAt - endsAt).toBeLessThan(1000);
    expect(watcher.completed()).toBe(true);
    // serverTime is the server's clock at sending: here the same machine's, so within the delivery time.
    for (const event of watcher.events) {
      const serverTime = Date.parse(event.serverTime);
      expect(event.receivedAt - serverTime).toBeGreaterThanOrEqual(-5);
      expect(event.receivedAt - serverTime).toBeLessThan(500);
    }
    await watcher.dispose();
  }
  expect(serving.services.stockFeed.subscribedCoupons()).not.toContain(couponId);
  expect(watching.services.stockFeed.subscribedCoupons()).not.toContain(couponId);
}, 30_000);

test('subscribing to an ended coupon gets its state once, then the subscription completes', async () => {
  const couponId = await createCoupon(serving.url, admin, { name: 'Brief', totalQuantity: 5, startsAt: new Date(Date.now() - 2000).toISOString(), endsAt: new Date(Date.now() + 300).toISOString() });
  await new Promise((resolve) => setTimeout(resolve, 400));
  const watcher = record(watching.url, couponId);
  await within(watcher.done, 5000);
  expect(watcher.events.map((e) => e.status)).toEqual(['ENDED']);
  expect(watcher.completed()).toBe(true);
  await watcher.dispose();
});

test('a subscription sent as POST /graphql is refused with 400 BAD_REQUEST naming the WebSocket endpoint, every time, and never runs', async () => {
  const couponId = await createCoupon(serving.url, admin, { name: 'Over HTTP', totalQuantity: 5 });
  const subscribedBefore = serving.services.stockFeed.subscribedCoupons().length;
  // Three times: a document accepted twice would be compiled, and the compiled path must not serve it either.
  for (let i = 0; i < 3; i++) {
    const reply = await postJson(serving.url, { query: WITH_TIME, variables: { couponId } }, { headers: { host: 'coupons.example:4000' } });
    const body = JSON.parse(reply.body.toString('utf8')) as { data?: unknown; errors: Array<{ message: string; extensions: Record<string, unknown> }> };
    expect(reply.status).toBe(400);
    expect(body.data).toBeUndefined();
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0]!.extensions).toEqual({ code: 'BAD_REQUEST' });
    expect(body.errors[0]!.message).toContain('ws://coupons.example:4000/graphql');
  }
  expect(serving.services.stockFeed.subscribedCoupons()).toHaveLength(subscribedBefore);
  // Queries on the same path are unaffected.
  const query = await gql(serving.url, `query { coupon(id: "${couponId}") { status } }`);
  expect(query.status).toBe(200);
  expect(query.data).toEqual({ coupon: { status: 'ACTIVE' } });
});
