/**
 * Admission slots over real HTTP: a slot is taken once the body has been read whole, and must come
 * back however the request ends, including a client that gives up while it waits for a slot.
 * One slot makes a lost release visible at once: the next request would wait and be refused.
 * While an opening draw's window is open, requests are let in without a slot (the draw's burst).
 */
import net from 'node:net';
import { claimAs, expectNoOversellNoDoubleNothingLost } from './faults/contract';
import { CLAIM, createCoupon, gql } from '../support/graphql';
import { at, createDrawCoupon, DRAW_COUPON } from '../support/draw';
import { adminToken, userToken, useTestService } from '../support/stack';

const suite = useTestService({ MAX_CONCURRENT_REQUESTS: '1', MAX_QUEUE_WAIT_MS: '2000', MAX_QUEUED_REQUESTS: '10' });

const QUERY = JSON.stringify({ query: '{ __typename }' });

/** A raw POST /graphql; `bodyBytes` short of the body's length stalls it. */
async function rawRequest(payload: string, headers: Record<string, string> = {}, bodyBytes = payload.length): Promise<net.Socket> {
  const socket = net.connect(suite.service.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const head = Object.entries({ host: 'localhost', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)), ...headers })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.on('error', () => undefined);
  socket.write(`POST /graphql HTTP/1.1\r\n${head}\r\n${payload.slice(0, bodyBytes)}`);
  return socket;
}

const ask = () =>
  fetch(`${suite.service.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: QUERY,
    signal: AbortSignal.timeout(5000),
  });

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a client that leaves while it waits for a slot, and one that leaves holding it, both give their slot back', async () => {
  // The holder's claim waits on Redis (writes paused), so it keeps the one slot meanwhile.
  const couponId = await createCoupon(suite.service.url, adminToken(), { name: 'Slots', totalQuantity: 10 });
  await suite.service.redis.call('CLIENT', 'PAUSE', '1500', 'WRITE');
  const holder = await rawRequest(JSON.stringify({ query: CLAIM, variables: { couponId } }), { authorization: `Bearer ${userToken('holder')}` });
  await pause(100);
  const waiter = await rawRequest(QUERY);
  await pause(100);
  // The waiter leaves first: it is admitted later with its response already closed.
  waiter.destroy();
  await pause(100);
  holder.destroy();
  await pause(100);

  const started = performance.now();
  const answers = await Promise.all(Array.from({ length: 5 }, () => ask()));
  expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200]);
  // Served at once, not after the 2 s queue wait of a leaked slot, nor after Redis resumes.
  expect(performance.now() - started).toBeLessThan(1000);
});

test('a request whose body has not all arrived holds no slot, and is answered 408 and cut once its time is up', async () => {
  const stalled = await rawRequest(QUERY, {}, 5);
  let answer = '';
  stalled.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
  const closed = new Promise((resolve) => stalled.once('close', resolve));
  const arrived = performance.now();
  await pause(100);
  const answers = await Promise.all(Array.from({ length: 5 }, () => ask()));
  expect(answers.map((reply) => reply.status)).toEqual([200, 200, 200, 200, 200]);
  expect(performance.now() - arrived).toBeLessThan(1000);
  await closed;
  expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  expect(answer).toMatch(/connection: close/i);
  expect(performance.now() - arrived).toBeLessThan(3000);
});

test('a slot comes back after every answered request', async () => {
  for (let i = 0; i < 20; i++) expect((await ask()).status).toBe(200);
});

test('entrants arriving through an opening draw window all enter and are answered, though one slot and ten places are all there is', async () => {
  const url = suite.service.url;
  const startsAt = Date.now() + 2500;
  const coupon = await createDrawCoupon(url, adminToken(), { name: 'Held on one slot', totalQuantity: 3, startsAt: new Date(startsAt).toISOString(), openingDrawMs: 1000 });
  const users = Array.from({ length: 20 }, (_, i) => `held-${i}`);
  await at(startsAt);
  // One every 40 ms through the window: held until the draw, 20 claims would need 20 slots, or
  // wait and be refused past the queue's 10 places; inside the window none needs a slot.
  const answers = await Promise.all(users.map(async (user, i) => (await pause(i * 40), claimAs(url, coupon.id, user, userToken(user)))));
  expect(answers.filter((a) => !a.status || a.ms >= 3000)).toEqual([]);
  expect(answers.filter((a) => a.status === 'ISSUED')).toHaveLength(3);
  expect(answers.filter((a) => a.status === 'SOLD_OUT')).toHaveLength(17);
  let entrants: number | null = null;
  for (let i = 0; i < 50 && entrants === null; i++) {
    entrants = (await gql(url, DRAW_COUPON, { id: coupon.id })).data!.coupon.drawEntrants;
    if (entrants === null) await pause(100);
  }
  expect(entrants).toBe(20);
  await expectNoOversellNoDoubleNothingLost(suite.service.models, coupon.id, 3, answers);
});

test('a request refused at capacity is told to retry after 1 s; while an opening draw window is open, a burst beyond the slot and the queue is let in instead', async () => {
  const url = suite.service.url;
  const couponId = await createCoupon(url, adminToken(), { name: 'Slot holder', totalQuantity: 100 });
  const startsAt = Date.now() + 4000;
  await createDrawCoupon(url, adminToken(), { name: 'Draw soon', totalQuantity: 3, startsAt: new Date(startsAt).toISOString(), openingDrawMs: 2000 });
  /** The one slot held by a claim waiting on Redis, then 21 requests at once: 10 may queue. */
  const burst = async (holder: string) => {
    await suite.service.redis.call('CLIENT', 'PAUSE', '1200', 'WRITE');
    const holding = await rawRequest(JSON.stringify({ query: CLAIM, variables: { couponId } }), { authorization: `Bearer ${userToken(holder)}` });
    await pause(100);
    const started = performance.now();
    const answers = await Promise.all(Array.from({ length: 21 }, () => ask()));
    const ms = performance.now() - started;
    holding.destroy();
    return { statuses: answers.map((answer) => answer.status), retryAfter: [...new Set(answers.filter((a) => a.status === 503).map((a) => a.headers.get('retry-after')))], ms };
  };
  // The sweep has seen the coming draw, but its window is not open yet.
  const before = await burst('holder-before');
  expect(before.statuses.filter((status) => status === 503).length).toBeGreaterThanOrEqual(1);
  expect(before.retryAfter).toEqual(['1']);
  await at(startsAt + 100);
  // Inside the window nothing is refused, and nothing waits for the held slot (Redis is paused 1.2 s).
  const during = await burst('holder-during');
  expect(during.statuses).toEqual(Array.from({ length: 21 }, () => 200));
  expect(during.ms).toBeLessThan(1000);
});
