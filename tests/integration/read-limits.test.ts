/**
 * Reads limited like claims: every GraphQL request charged its cost per address and per user,
 * never-seen documents held to a budget of their own, several coupons of one request read in one
 * batch, and unknown ids refused without asking MongoDB again.
 */
import { Types } from 'mongoose';
import type { RunningService } from '../../src/service';
import { NEW_DOCUMENT_COST } from '../../src/access/read-limiter';
import { postJson } from '../support/http';
import { adminToken, startStack, startTestService, userToken, type Stack } from '../support/stack';
import { COUPON, createCoupon, errorCode, type GraphQLReply } from '../support/graphql';

let stack: Stack;
/** Budgets small enough to reach in a test; addresses taken from X-Forwarded-For (loopback trusted). */
let limited: RunningService;
let admin: string;

const COST_PER_IP = 400;
const COST_PER_USER = 150;
const NEW_PER_IP = 5;

beforeAll(async () => {
  stack = await startStack();
  limited = await startTestService(stack, {
    TRUSTED_PROXIES: 'loopback',
    READ_COST_PER_IP: String(COST_PER_IP),
    READ_COST_PER_USER: String(COST_PER_USER),
    NEW_DOCUMENTS_PER_IP: String(NEW_PER_IP),
  });
  admin = await adminToken();
});

afterAll(async () => {
  await limited?.stop();
  await stack?.stop();
});

let nextAddress = 1;
/** A fresh client address for each test, so budgets spent by one test never touch another. */
const freshAddress = () => `198.51.100.${nextAddress++}`;

async function ask(query: string, variables: Record<string, unknown>, from: string, token?: string): Promise<GraphQLReply & { retryAfter?: string }> {
  const headers: Record<string, string> = { 'x-forwarded-for': from };
  if (token) headers.authorization = `Bearer ${token}`;
  const reply = await postJson(limited.url, { query, variables }, { headers });
  return { status: reply.status, retryAfter: reply.headers['retry-after'] as string | undefined, ...JSON.parse(reply.body.toString('utf8')) };
}

/** Waits for a new wall-clock second, so that a burst of sequential requests fits inside one limiter window (a window is one second from a key's first request). */
const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 20));

describe('request budgets per address and per user', () => {
  test('an address past its cost budget is refused RATE_LIMITED with HTTP 429 and retry-after, while another address is answered', async () => {
    const couponId = await createCoupon(limited.url, admin, { name: 'Budget', totalQuantity: 10 });
    // Sent before the test's second, so the document is known (and compiled) and costs only its execution.
    const known = await ask(COUPON, { id: couponId }, freshAddress());
    expect(known.data?.coupon?.id).toBe(couponId);
    await ask(COUPON, { id: couponId }, freshAddress());
    await nextSecond();
    const flooder = freshAddress();
    const replies: Array<GraphQLReply & { retryAfter?: string }> = [];
    for (let i = 0; i < 60; i++) replies.push(await ask(COUPON, { id: couponId }, flooder));
    const refused = replies.filter((reply) => errorCode(reply) === 'RATE_LIMITED');
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((reply) => reply.status === 429 && Number(reply.retryAfter) >= 1)).toBe(true);
    // The first ones were answered: the budget is cost per second, not a ban.
    expect(replies[0]!.data?.coupon?.id).toBe(couponId);
    const other = await ask(COUPON, { id: couponId }, freshAddress());
    expect(other.data?.coupon?.id).toBe(couponId);
  });

  test('one user is held to the per-user budget from any number of addresses', async () => {
    const couponId = await createCoupon(limited.url, admin, { name: 'User budget', totalQuantity: 10 });
    const token = userToken(`budget-user-${Date.now()}`);
    await ask(COUPON, { id: couponId }, freshAddress(), token);
    await ask(COUPON, { id: couponId }, freshAddress(), token);
    await nextSecond();
    const codes: Array<string | undefined> = [];
    for (let i = 0; i < 30; i++) codes.push(errorCode(await ask(COUPON, { id: couponId }, freshAddress(), token)));
    expect(codes.filter((code) => code === 'RATE_LIMITED').length).toBeGreaterThan(0);
    // Anonymous requests from a fresh address are not this user's.
    expect((await ask(COUPON, { id: couponId }, freshAddress())).data?.coupon?.id).toBe(couponId);
  });

  test('never-seen documents from one address are refused past their budget, before they are parsed; known ones still pass', async () => {
    const couponId = await createCoupon(limited.url, admin, { name: 'New documents', totalQuantity: 10 });
    const from = freshAddress();
    await ask(COUPON, { id: couponId }, freshAddress());
    await nextSecond();
    const codes: Array<string | undefined> = [];
    for (let i = 0; i < NEW_PER_IP + 3; i++) {
      // A comment makes each text new to the parsed-document cache.
      codes.push(errorCode(await ask(`# ${from} ${i} ${Math.random()}\n${COUPON}`, { id: couponId }, from)));
    }
    expect(codes.slice(0, NEW_PER_IP).every((code) => code === undefined)).toBe(true);
    expect(codes.slice(NEW_PER_IP).every((code) => code === 'RATE_LIMITED')).toBe(true);
    // Each refused new document costs its address NEW_DOCUMENT_COST (more than this test's whole
    // budget): for the rest of the second the address is refused at the door, known documents too.
    expect(NEW_DOCUMENT_COST).toBeGreaterThan(COST_PER_IP);
    expect(errorCode(await ask(COUPON, { id: couponId }, from))).toBe('RATE_LIMITED');
    // Another address is not affected, and the next second this one is answered again.
    expect((await ask(COUPON, { id: couponId }, freshAddress())).data?.coupon?.id).toBe(couponId);
    // An address's window is one second from its first request in it.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await ask(COUPON, { id: couponId }, from)).data?.coupon?.id).toBe(couponId);
  });
});

describe('many coupons in one request', () => {
  test('fifteen aliased coupon lookups, known and unknown, are one MongoDB read; unknown ids asked again cost none', async () => {
    const known = await Promise.all([1, 2, 3].map((n) => createCoupon(limited.url, admin, { name: `Batch ${n}`, totalQuantity: 5 })));
    const unknown = Array.from({ length: 12 }, () => new Types.ObjectId().toHexString());
    const ids = [...known, ...unknown];
    const query = `query { ${ids.map((id, i) => `c${i}: coupon(id: "${id}") { id name remaining }`).join(' ')} }`;
    // A fresh instance's catalog: nothing of these cached.
    const fresh = await startTestService(stack);
    try {
      const finds: unknown[] = [];
      const original = fresh.models.Coupon.find.bind(fresh.models.Coupon);
      const byId: string[] = [];
      const originalById = fresh.models.Coupon.findById.bind(fresh.models.Coupon);
      const findOne = jest.spyOn(fresh.models.Coupon, 'findById').mockImplementation(((id: unknown, ...rest: unknown[]) => {
        byId.push(String(id));
        return (originalById as (...args: unknown[]) => unknown)(id, ...rest);
      }) as never);
      const find = jest.spyOn(fresh.models.Coupon, 'find').mockImplementation(((filter: unknown, ...rest: unknown[]) => {
        finds.push(filter);
        return (original as (...args: unknown[]) => unknown)(filter, ...rest);
      }) as never);
      const reply = (await postJson(fresh.url, { query })).body.toString('utf8');
      const data = JSON.parse(reply).data as Record<string, { id: string } | null>;
      expect(known.every((id, i) => data[`c${i}`]?.id === id)).toBe(true);
      expect(unknown.every((_, i) => data[`c${i + known.length}`] === null)).toBe(true);
      const lookups = finds.filter((filter) => JSON.stringify(filter).includes('$in'));
      expect(lookups).toHaveLength(1);
      // No unknown id was looked up on its own (the known ones' claim state may read their definition).
      expect(byId.filter((id) => unknown.includes(id))).toEqual([]);
      // The same unknown ids again, at once: refused from the negative cache. It holds an unknown
      // id for a second; on a machine too busy to ask again within it, the pair is asked again.
      for (let attempt = 1; ; attempt++) {
        const asked = Date.now();
        finds.length = 0;
        await postJson(fresh.url, { query });
        if (Date.now() - asked < 800 || attempt === 3) {
          expect(finds.filter((filter) => JSON.stringify(filter).includes('$in'))).toHaveLength(0);
          break;
        }
        await postJson(fresh.url, { query });
      }
      find.mockRestore();
      findOne.mockRestore();
    } finally {
      await fresh.stop();
    }
  });
});
