/**
 * What reads answer: a redeem shows in claims answered from the sold-out memory, an order id is
 * kept as given, HEAD on the CSV export, no schema hints without introspection, and an ENDED
 * coupon's state neither rebuilt for a read or a claim nor kept in Redis once nothing can change it.
 */
import { couponKeys } from '../../src/redis/scripts';
import type { RunningService } from '../../src/service';
import { CLAIM_FULL, END, REDEEM, UPDATE, dataOf } from '../support/admin';
import { COUPON, createCoupon, errorCode, gql } from '../support/graphql';
import { request } from '../support/http';
import { errorsOf, rawSocket } from '../support/subscriptions';
import { adminToken, productionEnv, startStack, startTestService, userToken, type Stack } from '../support/stack';

let stack: Stack;
let service: RunningService;
let production: RunningService;
/** Removes an ENDED coupon's state 300 ms after its end. */
let retiring: RunningService;
let admin: string;

beforeAll(async () => {
  stack = await startStack();
  [service, production, retiring] = await Promise.all([
    startTestService(stack),
    startTestService(stack, productionEnv(stack)),
    startTestService(stack, { ENDED_STATE_RETENTION_MS: '300' }),
  ]);
  admin = adminToken();
});

afterAll(async () => {
  await Promise.all([service, production, retiring].map((running) => running?.stop()));
  await stack?.stop();
});

const claim = async (url: string, couponId: string, user: string) => dataOf(await gql(url, CLAIM_FULL, { couponId }, userToken(user))).claimCoupon;
const fromMemory = async () => (await service.metrics.claimsFromMemory.get()).values[0]?.value ?? 0;
const keysOf = async (couponId: string) => {
  const keys = couponKeys(couponId);
  return service.redis.exists(keys.meta, keys.winners, keys.pending, keys.free);
};

describe('answers from the sold-out memory', () => {
  test("a redeem shows in the winner's next claim answered from memory: REDEEMED with its orderId", async () => {
    const couponId = await createCoupon(service.url, admin, { name: 'Memory', totalQuantity: 2 });
    const won = await claim(service.url, couponId, 'mem-1');
    await claim(service.url, couponId, 'mem-2');
    expect(await claim(service.url, couponId, 'mem-late')).toMatchObject({ status: 'SOLD_OUT' });
    const until = Date.now() + 3000;
    while (Date.now() < until && (await fromMemory()) === 0) await claim(service.url, couponId, 'probe');
    const before = await fromMemory();
    // Answered from memory: the issuance object the memory holds, read as ACTIVE.
    expect(await claim(service.url, couponId, 'mem-1')).toMatchObject({ status: 'ALREADY_ISSUED', issuance: { id: won.issuance.id, status: 'ACTIVE', orderId: null } });
    dataOf(await gql(service.url, REDEEM, { issuanceId: won.issuance.id, orderId: 'order-mem-1' }, userToken('mem-1')));
    const after = await claim(service.url, couponId, 'mem-1');
    expect(await fromMemory()).toBeGreaterThan(before);
    expect(after).toMatchObject({ status: 'ALREADY_ISSUED', issuance: { id: won.issuance.id, status: 'REDEEMED', orderId: 'order-mem-1' } });
  });
});

describe('smaller read answers', () => {
  test('an orderId is stored as given: " A1" and "A1" are two orders, not one', async () => {
    const couponId = await createCoupon(service.url, admin, { name: 'Orders', totalQuantity: 5 });
    const won = await claim(service.url, couponId, 'order-user');
    const redeemed = dataOf(await gql(service.url, REDEEM, { issuanceId: won.issuance.id, orderId: ' A1' }, userToken('order-user'))).redeemIssuance;
    expect(redeemed.orderId).toBe(' A1');
    const other = await gql(service.url, REDEEM, { issuanceId: won.issuance.id, orderId: 'A1' }, userToken('order-user'));
    expect(errorCode(other)).toBe('ISSUANCE_NOT_ACTIVE');
    const same = await gql(service.url, REDEEM, { issuanceId: won.issuance.id, orderId: ' A1' }, userToken('order-user'));
    expect(same.data?.redeemIssuance?.orderId).toBe(' A1');
    expect(errorCode(await gql(service.url, REDEEM, { issuanceId: won.issuance.id, orderId: '   ' }, userToken('order-user')))).toBe('BAD_USER_INPUT');
  });

  test('HEAD on the CSV export answers as GET does, without the body', async () => {
    const couponId = await createCoupon(service.url, admin, { name: 'Head', totalQuantity: 5 });
    await claim(service.url, couponId, 'head-user');
    const path = `${service.url}/admin/coupons/${couponId}/issuances.csv`;
    const get = await request(path, { headers: { authorization: `Bearer ${admin}` } });
    const head = await request(path, { method: 'HEAD', headers: { authorization: `Bearer ${admin}` } });
    expect(get.status).toBe(200);
    expect(get.body.length).toBeGreaterThan(0);
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    for (const header of ['content-type', 'content-disposition', 'cache-control']) expect(head.headers[header]).toBe(get.headers[header]);
    expect((await request(path, { method: 'HEAD' })).status).toBe(401);
    expect((await request(path, { method: 'HEAD', headers: { authorization: `Bearer ${userToken('x')}` } })).status).toBe(403);
    expect((await request(`${service.url}/admin/coupons/6745f3d0a1b2c3d4e5f60719/issuances.csv`, { method: 'HEAD', headers: { authorization: `Bearer ${admin}` } })).status).toBe(404);
  });

  test('with introspection off no answer suggests names, enum values included, in literals and variables, on either path', async () => {
    const literal = `query { coupons(status: ACTIV) { edges { node { id } } } }`;
    const variable = `query Listed($s: CouponStatus) { coupons(status: $s) { edges { node { id } } } }`;
    const replies = [await gql(production.url, literal, {}, admin)];
    // Three times: the variable form is compiled after its second acceptance, then asked with a bad value.
    for (let i = 0; i < 3; i++) await gql(production.url, variable, { s: 'ACTIVE' }, admin);
    replies.push(await gql(production.url, variable, { s: 'ACTIV' }, admin));
    replies.push(await gql(production.url, `query { coupon(id: "6745f3d0a1b2c3d4e5f60719") { stauts } }`));
    for (const reply of replies) {
      expect(reply.errors?.length).toBeGreaterThan(0);
      for (const error of reply.errors!) {
        expect(error.message).not.toMatch(/Did you mean|"ACTIVE"|"status"/);
      }
    }
    // In development the hint is there (so the test above can fail).
    const open = await gql(service.url, literal, {}, admin);
    expect(open.errors![0]!.message).toMatch(/Did you mean the enum value "ACTIVE"/);
  });

  test('with introspection off the WebSocket suggests no enum value either', async () => {
    const socket = await rawSocket(production.url);
    try {
      await socket.init();
      socket.subscribe('enum', 'subscription Watch($s: CouponStatus = ACTIV) { stockChanged(couponId: "6745f3d0a1b2c3d4e5f60719") { remaining } }');
      const errors = errorsOf((await socket.outcome('enum')).message);
      expect(errors.length).toBeGreaterThan(0);
      for (const error of errors) expect(error.message).not.toMatch(/Did you mean|"ACTIVE"/);
    } finally {
      socket.close();
    }
  });
});

describe('an ENDED coupon in Redis', () => {
  test('is not rebuilt for a read or a claim: the winner hears ALREADY_ISSUED, others ENDED, and remaining is true', async () => {
    const couponId = await createCoupon(service.url, admin, { name: 'Ended', totalQuantity: 5 });
    const won = await claim(service.url, couponId, 'ended-winner');
    await claim(service.url, couponId, 'ended-second');
    dataOf(await gql(service.url, END, { id: couponId }, admin));
    // As after a Redis restart: the state is gone.
    const keys = couponKeys(couponId);
    await service.redis.del(keys.meta, keys.winners, keys.pending, keys.free);
    const read = dataOf(await gql(service.url, COUPON, { id: couponId })).coupon;
    expect(read).toMatchObject({ status: 'ENDED', remaining: 3 });
    expect(await claim(service.url, couponId, 'ended-winner')).toMatchObject({ status: 'ALREADY_ISSUED', remaining: 3, issuance: { id: won.issuance.id } });
    expect(await claim(service.url, couponId, 'ended-newcomer')).toMatchObject({ status: 'ENDED', issuance: null, remaining: 3 });
    await service.reconciler.runOnce();
    expect(await keysOf(couponId)).toBe(0);
  });

  test('is removed after the retention once nothing is pending, and a reopened coupon is rebuilt correctly on its next claim', async () => {
    const couponId = await createCoupon(retiring.url, admin, { name: 'Retired', totalQuantity: 3 });
    const first = await claim(retiring.url, couponId, 'retired-1');
    dataOf(await gql(retiring.url, END, { id: couponId }, admin));
    expect(await keysOf(couponId)).toBeGreaterThan(0);
    const until = Date.now() + 5000;
    while (Date.now() < until && (await keysOf(couponId)) > 0) await new Promise((r) => setTimeout(r, 100));
    expect(await keysOf(couponId)).toBe(0);
    // Reopened: the next claim rebuilds the state from MongoDB, keeping the first winner's unit.
    dataOf(await gql(retiring.url, UPDATE, { id: couponId, input: { endsAt: null } }, admin));
    await new Promise((r) => setTimeout(r, 1100));
    expect(await claim(retiring.url, couponId, 'retired-1')).toMatchObject({ status: 'ALREADY_ISSUED', issuance: { id: first.issuance.id } });
    const second = await claim(retiring.url, couponId, 'retired-2');
    expect(second).toMatchObject({ status: 'ISSUED', remaining: 1, issuance: { sequence: 2 } });
    expect(await keysOf(couponId)).toBeGreaterThan(0);
  });
});
