import { SignJWT } from 'jose';
import { adminToken, useTestService, TEST_SECRET, userToken } from '../support/stack';
import { CLAIM, COUPON, CREATE, createCoupon, errorCode, gql, MY_ISSUANCES } from '../support/graphql';

let admin: string;

const suite = useTestService();

beforeAll(async () => {
  admin = await adminToken();
});

const inOneHour = () => new Date(Date.now() + 3600_000).toISOString();

describe('claim outcomes', () => {
  test('a first claim is ISSUED with sequence 1, and the coupon shows one fewer remaining', async () => {
    const couponId = await createCoupon(suite.service.url, admin, { name: 'First', totalQuantity: 3 });
    const reply = await gql(suite.service.url, CLAIM, { couponId }, await userToken('alice'));
    expect(reply.errors).toBeUndefined();
    expect(reply.data!.claimCoupon).toMatchObject({ status: 'ISSUED', remaining: 2, issuance: { couponId, userId: 'alice', sequence: 1 } });
    const coupon = await gql(suite.service.url, COUPON, { id: couponId });
    expect(coupon.data!.coupon).toMatchObject({ remaining: 2, issuedCount: 1, status: 'ACTIVE', totalQuantity: 3 });
    expect(await suite.service.models.Issuance.countDocuments({ userId: 'alice' })).toBe(1);
  });

  test('a user who already won gets ALREADY_ISSUED with the same issuance back', async () => {
    const couponId = await createCoupon(suite.service.url, admin, { name: 'Twice', totalQuantity: 5 });
    const token = await userToken('bob');
    const first = await gql(suite.service.url, CLAIM, { couponId }, token);
    const second = await gql(suite.service.url, CLAIM, { couponId }, token);
    expect(first.data!.claimCoupon.status).toBe('ISSUED');
    expect(second.data!.claimCoupon.status).toBe('ALREADY_ISSUED');
    expect(second.data!.claimCoupon.issuance).toEqual(first.data!.claimCoupon.issuance);
    expect(second.data!.claimCoupon.remaining).toBe(4);
  });

  test('when the stock is gone the next user gets SOLD_OUT and the coupon says SOLD_OUT', async () => {
    const couponId = await createCoupon(suite.service.url, admin, { name: 'Single', totalQuantity: 1 });
    expect((await gql(suite.service.url, CLAIM, { couponId }, await userToken('winner'))).data!.claimCoupon.status).toBe('ISSUED');
    const late = await gql(suite.service.url, CLAIM, { couponId }, await userToken('late'));
    expect(late.data!.claimCoupon).toEqual({ status: 'SOLD_OUT', remaining: 0, issuance: null });
    expect((await gql(suite.service.url, COUPON, { id: couponId })).data!.coupon.status).toBe('SOLD_OUT');
  });

  test('the win answered with nothing remaining is stored as the one that took the last unit (for COUPON_SOLD_OUT)', async () => {
    const couponId = await createCoupon(suite.service.url, admin, { name: 'Last unit', totalQuantity: 3 });
    const users = ['last-a', 'last-b', 'last-c', 'last-d'];
    const answers = await Promise.all(users.map(async (user) => ({ user, reply: (await gql(suite.service.url, CLAIM, { couponId }, await userToken(user))).data!.claimCoupon })));
    const last = answers.filter((a) => a.reply.status === 'ISSUED' && a.reply.remaining === 0);
    expect(last).toHaveLength(1);
    const flagged = await suite.service.models.Issuance.find({ couponId, lastUnit: true }).lean();
    expect(flagged.map((doc) => doc.userId)).toEqual([last[0]!.user]);
  });

  test('a coupon that has not started answers NOT_STARTED and stays SCHEDULED', async () => {
    const couponId = await createCoupon(suite.service.url, admin, { name: 'Later', totalQuantity: 10, startsAt: inOneHour() });
    const reply = await gql(suite.service.url, CLAIM, { couponId }, await userToken('early'));
    expect(reply.data!.claimCoupon).toEqual({ status: 'NOT_STARTED', remaining: 10, issuance: null });
    expect((await gql(suite.service.url, COUPON, { id: couponId })).data!.coupon.status).toBe('SCHEDULED');
  });

  test('a coupon whose end has passed answers ENDED', async () => {
    const startsAt = new Date(Date.now() - 1000).toISOString();
    const endsAt = new Date(Date.now() + 300).toISOString();
    const couponId = await createCoupon(suite.service.url, admin, { name: 'Brief', totalQuantity: 10, startsAt, endsAt });
    await new Promise((resolve) => setTimeout(resolve, 400));
    const reply = await gql(suite.service.url, CLAIM, { couponId }, await userToken('slow'));
    expect(reply.data!.claimCoupon).toEqual({ status: 'ENDED', remaining: 10, issuance: null });
    expect((await gql(suite.service.url, COUPON, { id: couponId })).data!.coupon.status).toBe('ENDED');
  });

  test('myIssuances lists only the caller’s own issuances, with their coupon', async () => {
    const couponId = await createCoupon(suite.service.url, admin, { name: 'Mine', totalQuantity: 5 });
    await gql(suite.service.url, CLAIM, { couponId }, await userToken('carol'));
    await gql(suite.service.url, CLAIM, { couponId }, await userToken('dave'));
    const reply = await gql(suite.service.url, MY_ISSUANCES, {}, await userToken('carol'));
    expect(reply.data!.myIssuances).toHaveLength(1);
    expect(reply.data!.myIssuances[0]).toMatchObject({ userId: 'carol', couponId, coupon: { id: couponId, name: 'Mine' } });
  });

  test('createCoupon trims the name, defaults startsAt to now, and returns a full coupon', async () => {
    const before = Date.now();
    const reply = await gql(suite.service.url, CREATE, { input: { name: '  Spring sale  ', totalQuantity: 1000 } }, admin);
    const coupon = reply.data!.createCoupon;
    expect(coupon).toMatchObject({ name: 'Spring sale', totalQuantity: 1000, remaining: 1000, issuedCount: 0, status: 'ACTIVE', endsAt: null });
    expect(Date.parse(coupon.startsAt)).toBeGreaterThanOrEqual(before - 1000);
  });

  test('an unknown coupon id reads as null', async () => {
    const reply = await gql(suite.service.url, COUPON, { id: '0123456789abcdef01234567' });
    expect(reply.errors).toBeUndefined();
    expect(reply.data!.coupon).toBeNull();
  });
});

describe('errors', () => {
  const expired = () =>
    new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('old').setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(new TextEncoder().encode(TEST_SECRET));
  const foreign = () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('mallory').sign(new TextEncoder().encode('another-secret-0123456789abcdefghij'));
  let couponId: string;
  beforeAll(async () => {
    couponId = await createCoupon(suite.service.url, admin, { name: 'Guarded', totalQuantity: 5 });
  });

  test.each([
    ['no token', async () => undefined],
    ['a token signed with another key', foreign],
    ['an expired token', expired],
    ['a malformed token', async () => 'not-a-jwt'],
  ])('claiming with %s is UNAUTHENTICATED and issues nothing', async (_, token) => {
    const reply = await gql(suite.service.url, CLAIM, { couponId }, await token());
    expect(errorCode(reply)).toBe('UNAUTHENTICATED');
    expect(reply.data).toBeNull();
  });

  test('a token with an empty or over-long sub is UNAUTHENTICATED', async () => {
    const key = new TextEncoder().encode(TEST_SECRET);
    const long = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('x'.repeat(129)).sign(key);
    const none = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).sign(key);
    expect(errorCode(await gql(suite.service.url, CLAIM, { couponId }, long))).toBe('UNAUTHENTICATED');
    expect(errorCode(await gql(suite.service.url, CLAIM, { couponId }, none))).toBe('UNAUTHENTICATED');
  });

  test('myIssuances without a token is UNAUTHENTICATED', async () => {
    expect(errorCode(await gql(suite.service.url, MY_ISSUANCES))).toBe('UNAUTHENTICATED');
  });

  test('a non-admin creating a coupon is FORBIDDEN; without a token it is UNAUTHENTICATED', async () => {
    const input = { name: 'Nope', totalQuantity: 1 };
    expect(errorCode(await gql(suite.service.url, CREATE, { input }, await userToken('eve')))).toBe('FORBIDDEN');
    expect(errorCode(await gql(suite.service.url, CREATE, { input }))).toBe('UNAUTHENTICATED');
  });

  test.each([
    [{ name: '   ', totalQuantity: 1 }, 'name'],
    [{ name: 'x'.repeat(201), totalQuantity: 1 }, 'name'],
    [{ name: 'ok', totalQuantity: 0 }, 'totalQuantity'],
    [{ name: 'ok', totalQuantity: 10_000_001 }, 'totalQuantity'],
    [{ name: 'ok', totalQuantity: 5, startsAt: '2030-01-02T00:00:00Z', endsAt: '2030-01-01T00:00:00Z' }, 'endsAt'],
    [{ name: 'ok', totalQuantity: 5, startsAt: '2030-01-01T00:00:00Z', endsAt: '2030-01-01T00:00:00Z' }, 'endsAt'],
  ])('createCoupon(%j) is BAD_USER_INPUT naming %s', async (input, field) => {
    const reply = await gql(suite.service.url, CREATE, { input }, admin);
    expect(errorCode(reply)).toBe('BAD_USER_INPUT');
    expect(reply.errors![0]!.extensions!.field).toBe(field);
  });

  test('a DateTime that is not ISO-8601 is BAD_USER_INPUT', async () => {
    const reply = await gql(suite.service.url, CREATE, { input: { name: 'ok', totalQuantity: 1, startsAt: 'tomorrow' } }, admin);
    expect(errorCode(reply)).toBe('BAD_USER_INPUT');
  });

  test('a malformed coupon id is BAD_USER_INPUT, an unknown one NOT_FOUND', async () => {
    const token = await userToken('frank');
    expect(errorCode(await gql(suite.service.url, CLAIM, { couponId: 'abc' }, token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await gql(suite.service.url, COUPON, { id: 'abc' }))).toBe('BAD_USER_INPUT');
    expect(errorCode(await gql(suite.service.url, CLAIM, { couponId: '0123456789abcdef01234567' }, token))).toBe('NOT_FOUND');
  });

  test('errors carry no stack trace or internal detail', async () => {
    const reply = await gql(suite.service.url, CLAIM, { couponId: 'abc' }, await userToken('frank'));
    expect(JSON.stringify(reply)).not.toMatch(/stacktrace|at .*\.ts:\d+/i);
  });

  test('health answers 200 with both dependencies up', async () => {
    const response = await fetch(`${suite.service.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, redis: 'up', mongodb: 'up' });
  });
});
