import { Redis } from 'ioredis';
import WebSocket from 'ws';
import type { RunningService } from '../../src/service';
import { CLAIM, createCoupon, gql } from '../support/graphql';
import { adminToken, startStack, startTestService, userToken, type Stack } from '../support/stack';
import { STOCK_CHANGED, wsClient, watchStock, type StockEvent } from '../support/subscriptions';
import { stockChannel } from '../../src/redis/scripts';

let stack: Stack;
let serving: RunningService;
let watching: RunningService;
let admin: string;
let probe: Redis;

beforeAll(async () => {
  stack = await startStack();
  [serving, watching] = await Promise.all([startTestService(stack), startTestService(stack)]);
  admin = await adminToken();
  probe = new Redis(stack.redis.url);
});

afterAll(async () => {
  probe?.disconnect();
  await Promise.all([serving?.stop(), watching?.stop()]);
  await stack?.stop();
});

const claimAs = async (baseUrl: string, user: string, couponId: string) => gql(baseUrl, CLAIM, { couponId }, await userToken(user));
const stockChannels = async () => (await probe.pubsub('CHANNELS', 'coupon-stock:*')) as string[];

async function eventually(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

test('the first event is the current state, sent at once', async () => {
  const couponId = await createCoupon(serving.url, admin, { name: 'Now', totalQuantity: 7 });
  await claimAs(serving.url, 'u1', couponId);
  const client = wsClient(watching.url);
  const watcher = watchStock(client, couponId);
  const first = await watcher.until(() => true, 2000);
  expect(first).toEqual({ couponId, remaining: 6, totalQuantity: 7, status: 'ACTIVE' });
  await client.dispose();
});

test('a subscriber on one instance sees claims served by another, never increasing, ending SOLD_OUT at 0', async () => {
  const total = 60;
  const couponId = await createCoupon(serving.url, admin, { name: 'Across', totalQuantity: total });
  const client = wsClient(watching.url);
  const watcher = watchStock(client, couponId);
  await watcher.until((e) => e.remaining === total);
  const tokens = await Promise.all(Array.from({ length: total + 20 }, (_, i) => userToken(`across-${i}`)));
  const replies = await Promise.all(tokens.map((token) => gql(serving.url, CLAIM, { couponId }, token)));
  expect(replies.filter((r) => r.data?.claimCoupon.status === 'ISSUED')).toHaveLength(total);
  const last = await watcher.until((e) => e.remaining === 0);
  expect(last.status).toBe('SOLD_OUT');
  const seen = watcher.events.map((e) => e.remaining);
  expect([...seen].sort((a, b) => b - a)).toEqual(seen);
  await client.dispose();
});

test('every update reaches the socket as graphql-ws writes a next message: one text frame each, newest last, ending SOLD_OUT', async () => {
  const total = 30;
  const couponId = await createCoupon(serving.url, admin, { name: 'Frames', totalQuantity: total });
  const socket = new WebSocket(`${watching.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  const texts: string[] = [];
  const soldOut = new Promise<void>((resolve, reject) => {
    socket.on('message', (data, isBinary) => {
      if (isBinary) return reject(new Error('a binary frame'));
      const text = String(data);
      const message = JSON.parse(text) as { type: string; payload?: { data?: { stockChanged: { remaining: number } } } };
      if (message.type === 'connection_ack') {
        socket.send(JSON.stringify({ id: 'raw-1', type: 'subscribe', payload: { query: STOCK_CHANGED, variables: { couponId } } }));
      } else if (message.type === 'next') {
        texts.push(text);
        if (message.payload?.data?.stockChanged.remaining === 0) resolve();
      }
    });
    socket.on('error', reject);
  });
  socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
  await eventually(async () => texts.length > 0);
  const tokens = await Promise.all(Array.from({ length: total }, (_, i) => userToken(`frames-${i}`)));
  await Promise.all(tokens.map((token) => gql(serving.url, CLAIM, { couponId }, token)));
  await soldOut;
  socket.close();

  const messages = texts.map((text) => JSON.parse(text) as { id: string; type: string; payload: { data: { stockChanged: StockEvent } } });
  // Byte for byte what graphql-ws writes for a result: {"id","type","payload":{"data"}}.
  messages.forEach((message, i) => expect(texts[i]).toBe(JSON.stringify({ id: 'raw-1', type: 'next', payload: { data: message.payload.data } })));
  const remaining = messages.map((message) => message.payload.data.stockChanged.remaining);
  expect(remaining.length).toBeGreaterThan(1);
  expect(remaining[0]).toBe(total);
  expect([...remaining].sort((a, b) => b - a)).toEqual(remaining);
  expect(new Set(remaining).size).toBe(remaining.length);
  expect(messages.at(-1)!.payload.data.stockChanged).toEqual({ couponId, remaining: 0, totalQuantity: total, status: 'SOLD_OUT' });
});

test('a burst of claims is coalesced to at most one update per 100 ms, and the last one arrives', async () => {
  const total = 400;
  const couponId = await createCoupon(serving.url, admin, { name: 'Burst', totalQuantity: total });
  const client = wsClient(watching.url);
  const watcher = watchStock(client, couponId);
  await watcher.until((e) => e.remaining === total);
  const tokens = await Promise.all(Array.from({ length: total }, (_, i) => userToken(`burst-${i}`)));
  const started = Date.now();
  for (let i = 0; i < tokens.length; i += 50) {
    await Promise.all(tokens.slice(i, i + 50).map((token) => gql(serving.url, CLAIM, { couponId }, token)));
  }
  await watcher.until((e) => e.remaining === 0);
  const elapsed = Date.now() - started;
  const updates = watcher.events.length - 1;
  // One update per started 100 ms window, plus the trailing one.
  expect(updates).toBeLessThanOrEqual(Math.ceil(elapsed / 100) + 2);
  expect(updates).toBeLessThan(total / 4);
  expect(watcher.events.at(-1)).toMatchObject({ remaining: 0, status: 'SOLD_OUT' });
  await client.dispose();
});

test('an unknown coupon gives a clear NOT_FOUND error and ends the subscription', async () => {
  const client = wsClient(watching.url);
  const watcher = watchStock(client, '0123456789abcdef01234567');
  await watcher.completed;
  expect(JSON.stringify(watcher.errors)).toContain('NOT_FOUND');
  const malformed = watchStock(client, 'nope');
  await malformed.completed;
  expect(JSON.stringify(malformed.errors)).toContain('BAD_USER_INPUT');
  await client.dispose();
});

test('an invalid token is refused at connection time; no token is fine', async () => {
  const couponId = await createCoupon(serving.url, admin, { name: 'Public', totalQuantity: 3 });
  let closedWith: number | undefined;
  const refused = wsClient(watching.url, { token: 'junk', onClosed: (code) => (closedWith = code) });
  const watcher = watchStock(refused, couponId);
  await watcher.completed;
  expect(closedWith).toBe(4403);
  await refused.dispose();
  const valid = wsClient(watching.url, { token: await userToken('viewer') });
  await watchStock(valid, couponId).until((e) => e.remaining === 3);
  await valid.dispose();
});

test('subscribers that leave release the Redis subscription; a reconnecting client gets the current state', async () => {
  const couponId = await createCoupon(serving.url, admin, { name: 'Leave', totalQuantity: 10 });
  const clients = Array.from({ length: 5 }, () => wsClient(watching.url));
  const watchers = clients.map((client) => watchStock(client, couponId));
  await Promise.all(watchers.map((w) => w.until((e) => e.remaining === 10)));
  expect(watching.services.stockFeed.subscribedCoupons()).toContain(couponId);
  expect(await stockChannels()).toContain(stockChannel(couponId));
  await Promise.all(clients.map((client) => client.dispose()));
  await eventually(async () => !watching.services.stockFeed.subscribedCoupons().includes(couponId));
  await eventually(async () => !(await stockChannels()).includes(stockChannel(couponId)));
  expect((await watching.metrics.subscriptions.get()).values[0]!.value).toBe(0);

  await claimAs(serving.url, 'while-away', couponId);
  const again = wsClient(watching.url);
  const first = await watchStock(again, couponId).until(() => true);
  expect(first.remaining).toBe(9);
  await again.dispose();
});

test('server shutdown completes open subscriptions cleanly', async () => {
  const extra = await startTestService(stack);
  const couponId = await createCoupon(serving.url, admin, { name: 'Shutdown', totalQuantity: 5 });
  const client = wsClient(extra.url);
  const watcher = watchStock(client, couponId);
  await watcher.until((e) => e.remaining === 5);
  await extra.stop();
  await watcher.completed;
  // A `complete` from the server, not a dropped socket.
  expect(watcher.errors).toEqual([]);
  await client.dispose();
});

test('one connection may hold at most 20 subscriptions; the 21st is refused with a clear error', async () => {
  const couponId = await createCoupon(serving.url, admin, { name: 'Many', totalQuantity: 3 });
  const client = wsClient(watching.url);
  const watchers = Array.from({ length: 20 }, () => watchStock(client, couponId));
  await Promise.all(watchers.map((w) => w.until(() => true)));
  const refused = watchStock(client, couponId);
  await refused.completed;
  expect(JSON.stringify(refused.errors)).toContain('at most 20 subscriptions per connection');
  await client.dispose();
});

test('a socket that never sends connection_init is closed after 3 s (4408)', async () => {
  const socket = new WebSocket(`${watching.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
  const code = await new Promise<number>((resolve) => socket.on('close', (closeCode) => resolve(closeCode)));
  expect(code).toBe(4408);
});

test('claims cannot be sent over the socket, so aliases there cannot multiply them', async () => {
  const couponId = await createCoupon(serving.url, admin, { name: 'NoWsClaims', totalQuantity: 50 });
  const client = wsClient(watching.url, { token: await userToken('socket-bot') });
  const aliased = Array.from({ length: 5 }, (_, i) => `c${i}: claimCoupon(couponId: "${couponId}") { status }`).join('\n');
  const send = () =>
    new Promise<{ errors?: readonly unknown[]; data?: unknown }>((resolve) => {
      let seen: { errors?: readonly unknown[]; data?: unknown } = {};
      client.subscribe({ query: `mutation { ${aliased} }` }, { next: (r) => (seen = r), error: (e) => resolve({ errors: [e] }), complete: () => resolve(seen) });
    });
  // The second time, the document's validation is remembered: it must be refused just the same.
  for (const result of [await send(), await send()]) {
    expect(JSON.stringify(result.errors)).toContain('only subscriptions are served over WebSocket');
  }
  expect(await serving.models.Issuance.countDocuments({ userId: 'socket-bot' })).toBe(0);
  await client.dispose();
});
