import { Types } from 'mongoose';
import { gql, COUPON, createCoupon, errorCode, type GraphQLReply } from '../support/graphql';
import { request } from '../support/http';
import { adminToken, userToken, useTestServices } from '../support/stack';
import { AUDIT, CANCEL, claimIssuance, COUPON_ISSUANCES, COUPONS, dataOf, END, REDEEM, UPDATE } from '../support/admin';
import type { RunningService } from '../../src/service';

const suite = useTestServices(2);
let one: RunningService;
let two: RunningService;
let admin: string;

beforeAll(async () => {
  [one, two] = suite.services as [RunningService, RunningService];
  admin = await adminToken();
});

const couponOn = async (url: string, id: string) => dataOf(await gql(url, COUPON, { id })).coupon;
const csv = (url: string, couponId: string, token?: string) =>
  request(`${url}/admin/coupons/${couponId}/issuances.csv`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

/** Polls until `check` holds or `ms` pass; returns how long it took. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return performance.now() - started;
}

describe('updateCoupon and endCoupon', () => {
  test('endCoupon ends claims on every instance within 1 s, and is idempotent', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Ending', totalQuantity: 10 });
    // Both instances have the definition cached and the state loaded.
    await claimIssuance(one.url, couponId, userToken('end-a'));
    await claimIssuance(two.url, couponId, userToken('end-b'));
    const ended = dataOf(await gql(one.url, END, { id: couponId }, admin)).endCoupon;
    expect(ended.status).toBe('ENDED');
    const took = await within(1000, async () => (await claimIssuance(two.url, couponId, userToken('end-c'))).status === 'ENDED' && (await couponOn(two.url, couponId)).status === 'ENDED');
    expect(took).toBeLessThan(1000);
    const again = dataOf(await gql(two.url, END, { id: couponId }, admin)).endCoupon;
    expect(again.endsAt).toBe(ended.endsAt);
  });

  test('raising totalQuantity reopens a SOLD_OUT coupon everywhere, also where it was answered from memory', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Reopen', totalQuantity: 1 });
    await claimIssuance(one.url, couponId, userToken('ro-winner'));
    for (let i = 0; i < 4; i++) {
      await claimIssuance(two.url, couponId, userToken(`ro-late-${i}`));
      await new Promise((resolve) => setTimeout(resolve, 80));
    }
    const updated = dataOf(await gql(one.url, UPDATE, { id: couponId, input: { totalQuantity: 2 } }, admin)).updateCoupon;
    expect(updated).toMatchObject({ totalQuantity: 2, remaining: 1, issuedCount: 1, status: 'ACTIVE' });
    await within(1000, async () => (await claimIssuance(two.url, couponId, userToken('ro-next'))).status === 'ISSUED');
    expect((await couponOn(one.url, couponId)).status).toBe('SOLD_OUT');
  });

  test('the rules: startsAt only while SCHEDULED, totalQuantity not below issuedCount, endsAt after startsAt; admin only', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Rules', totalQuantity: 3 });
    await claimIssuance(one.url, couponId, userToken('rule-1'));
    await claimIssuance(one.url, couponId, userToken('rule-2'));
    const field = (reply: GraphQLReply) => [errorCode(reply), reply.errors?.[0]?.extensions?.field];
    expect(field(await gql(one.url, UPDATE, { id: couponId, input: { totalQuantity: 1 } }, admin))).toEqual(['BAD_USER_INPUT', 'totalQuantity']);
    expect(field(await gql(one.url, UPDATE, { id: couponId, input: { startsAt: new Date(Date.now() + 60_000).toISOString() } }, admin))).toEqual(['BAD_USER_INPUT', 'startsAt']);
    expect(field(await gql(one.url, UPDATE, { id: couponId, input: { endsAt: new Date(0).toISOString() } }, admin))).toEqual(['BAD_USER_INPUT', 'endsAt']);
    expect(errorCode(await gql(one.url, UPDATE, { id: couponId, input: { name: 'x' } }, userToken('rule-1')))).toBe('FORBIDDEN');
    expect(errorCode(await gql(one.url, UPDATE, { id: new Types.ObjectId().toHexString(), input: { name: 'x' } }, admin))).toBe('NOT_FOUND');
    const lowered = dataOf(await gql(two.url, UPDATE, { id: couponId, input: { totalQuantity: 2, name: '  Renamed ' } }, admin)).updateCoupon;
    expect(lowered).toMatchObject({ name: 'Renamed', totalQuantity: 2, remaining: 0, status: 'SOLD_OUT' });
    expect((await claimIssuance(one.url, couponId, userToken('rule-3'))).status).toBe('SOLD_OUT');
  });

  test('a scheduled coupon moved to start now opens on every instance within 1 s', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Sooner', totalQuantity: 5, startsAt: new Date(Date.now() + 3600_000).toISOString() });
    expect((await claimIssuance(two.url, couponId, userToken('soon-a'))).status).toBe('NOT_STARTED');
    dataOf(await gql(one.url, UPDATE, { id: couponId, input: { startsAt: new Date().toISOString() } }, admin));
    await within(1000, async () => (await claimIssuance(two.url, couponId, userToken('soon-a'))).status === 'ISSUED');
  });
});

describe('admin pages', () => {
  test('coupons: newest first in cursor pages of up to 100, filtered by status; admin only', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await createCoupon(one.url, admin, { name: `Page ${i}`, totalQuantity: 1, startsAt: new Date(Date.now() + 3600_000).toISOString() }));
    const first = dataOf(await gql(one.url, COUPONS, { status: 'SCHEDULED', first: 3 }, admin)).coupons;
    expect(first.edges.map((e: any) => e.node.id)).toEqual(ids.slice(-3).reverse());
    expect(first.pageInfo.hasNextPage).toBe(true);
    const next = dataOf(await gql(one.url, COUPONS, { status: 'SCHEDULED', first: 3, after: first.pageInfo.endCursor }, admin)).coupons;
    expect(next.edges.map((e: any) => e.node.id).slice(0, 2)).toEqual(ids.slice(0, 2).reverse());
    expect(errorCode(await gql(one.url, COUPONS, { first: 101 }, admin))).toBe('BAD_USER_INPUT');
    expect(errorCode(await gql(one.url, COUPONS, { first: 5 }, userToken('nosy')))).toBe('FORBIDDEN');
    // The request limits let a full page of 100 through for an admin.
    const full = await gql(one.url, COUPONS, { first: 100 }, admin);
    expect(full.errors).toBeUndefined();
  });

  test('couponIssuances: in sequence order, cancelled ones with their status, pages of up to 1000', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Listing', totalQuantity: 4 });
    const won = [];
    for (const user of ['l-1', 'l-2', 'l-3']) won.push((await claimIssuance(one.url, couponId, userToken(user))).issuance);
    dataOf(await gql(one.url, CANCEL, { issuanceId: won[1].id }, admin));
    await claimIssuance(one.url, couponId, userToken('l-4'));
    const page = dataOf(await gql(one.url, COUPON_ISSUANCES, { couponId, first: 2 }, admin)).couponIssuances;
    const middle = dataOf(await gql(one.url, COUPON_ISSUANCES, { couponId, first: 1, after: page.pageInfo.endCursor }, admin)).couponIssuances;
    expect(middle.edges.map((e: any) => e.node.userId)).toEqual(['l-2']);
    const rest = dataOf(await gql(one.url, COUPON_ISSUANCES, { couponId, first: 1000, after: page.pageInfo.endCursor }, admin)).couponIssuances;
    const rows = [...page.edges, ...rest.edges].map((e: any) => [e.node.sequence, e.node.userId, e.node.status]);
    expect(rows).toEqual([[1, 'l-1', 'ACTIVE'], [2, 'l-4', 'ACTIVE'], [2, 'l-2', 'CANCELLED'], [3, 'l-3', 'ACTIVE']]);
    expect(rest.pageInfo.hasNextPage).toBe(false);
    expect(errorCode(await gql(one.url, COUPON_ISSUANCES, { couponId, first: 1001 }, admin))).toBe('BAD_USER_INPUT');
  });
});

describe('request limits', () => {
  const LITERAL_PAGE = `{ coupons(first: 50) { edges { cursor node { id name totalQuantity remaining issuedCount status startsAt endsAt redeemBy } } pageInfo { hasNextPage endCursor } } }`;
  const BIG_ISSUANCE_PAGE = COUPON_ISSUANCES.replace('cancelledAt }', 'cancelledAt coupon { id name remaining status } }');

  test('admin pages pass the cost limit for an admin, with first as a literal or a variable', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Limits', totalQuantity: 1 });
    expect((await gql(one.url, LITERAL_PAGE, {}, admin)).errors).toBeUndefined();
    expect((await gql(one.url, BIG_ISSUANCE_PAGE, { couponId, first: 1000 }, admin)).errors).toBeUndefined();
  });

  test('the same documents are refused before execution for anyone else, also when first hides in a variable', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Limits 2', totalQuantity: 1 });
    for (const token of [undefined, userToken('limited')]) {
      const literal = await gql(one.url, LITERAL_PAGE, {}, token);
      expect([literal.status, errorCode(literal)]).toEqual([400, 'GRAPHQL_VALIDATION_FAILED']);
      const variable = await gql(one.url, BIG_ISSUANCE_PAGE, { couponId, first: 1000 }, token);
      expect([variable.status, errorCode(variable)]).toEqual([400, 'GRAPHQL_VALIDATION_FAILED']);
    }
    // Small pages are within everyone's limit, and then it is the admin check that refuses.
    expect(errorCode(await gql(one.url, COUPONS, { first: 2 }, userToken('limited')))).toBe('FORBIDDEN');
  });
});

describe('CSV export', () => {
  test('streams every issuance in sequence order with the header row, escaped and safe from formulas', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Export', totalQuantity: 5 });
    const users = ['plain', 'comma,user', 'quote"user', '=HYPERLINK("x")', '-1+1'];
    const won = [];
    for (const user of users) won.push((await claimIssuance(one.url, couponId, userToken(user))).issuance);
    dataOf(await gql(one.url, REDEEM, { issuanceId: won[0].id, orderId: '@order,1' }, userToken('plain')));
    const reply = await csv(one.url, couponId, admin);
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toMatch(/^text\/csv/);
    const lines = reply.body.toString('utf8').trimEnd().split('\r\n');
    expect(lines[0]).toBe('sequence,userId,issuanceId,status,issuedAt,redeemedAt,orderId');
    expect(lines).toHaveLength(6);
    expect(lines[1]).toMatch(new RegExp(`^1,plain,${won[0].id},REDEEMED,[^,]+Z,[^,]+Z,"'@order,1"$`));
    expect(lines[2]).toBe(`2,"comma,user",${won[1].id},ACTIVE,${won[1].issuedAt},,`);
    expect(lines[3]).toBe(`3,"quote""user",${won[2].id},ACTIVE,${won[2].issuedAt},,`);
    expect(lines[4]).toBe(`4,"'=HYPERLINK(""x"")",${won[3].id},ACTIVE,${won[3].issuedAt},,`);
    expect(lines[5]).toBe(`5,'-1+1,${won[4].id},ACTIVE,${won[4].issuedAt},,`);
  });

  test('401 without a valid token, 403 for a non-admin, 404 for an unknown coupon', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Guarded', totalQuantity: 1 });
    expect((await csv(one.url, couponId)).status).toBe(401);
    expect((await csv(one.url, couponId, 'not-a-token')).status).toBe(401);
    expect((await csv(one.url, couponId, userToken('someone'))).status).toBe(403);
    expect((await csv(one.url, new Types.ObjectId().toHexString(), admin)).status).toBe(404);
  });
});

describe('audit trail', () => {
  test('admin mutations, redeems and cancels are recorded with who, what, when, before and after', async () => {
    const couponId = await createCoupon(one.url, admin, { name: 'Audited', totalQuantity: 3 });
    const holder = userToken('au-holder');
    const issuance = (await claimIssuance(one.url, couponId, holder)).issuance;
    dataOf(await gql(one.url, UPDATE, { id: couponId, input: { totalQuantity: 5 } }, admin));
    dataOf(await gql(one.url, CANCEL, { issuanceId: issuance.id }, holder));
    dataOf(await gql(two.url, END, { id: couponId }, admin));
    const entries = dataOf(await gql(two.url, AUDIT, { couponId, first: 10 }, admin)).auditLog.edges.map((e: any) => e.node);
    expect(entries.map((e: any) => [e.action, e.actorId, e.actorIsAdmin])).toEqual([
      ['END_COUPON', 'operator', true],
      ['CANCEL_ISSUANCE', 'au-holder', false],
      ['UPDATE_COUPON', 'operator', true],
      ['CREATE_COUPON', 'operator', true],
    ]);
    expect(JSON.parse(entries[2].before)).toEqual({ totalQuantity: 3 });
    expect(JSON.parse(entries[2].after)).toEqual({ totalQuantity: 5 });
    expect(entries[1].issuanceId).toBe(issuance.id);
    expect(errorCode(await gql(one.url, AUDIT, { couponId }, holder))).toBe('FORBIDDEN');
  });
});
