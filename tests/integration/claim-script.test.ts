import { startRedisServer, type EmbeddedServer } from '../../src/infra/embedded';
import { createLogger } from '../../src/logger';
import { createRedisClient, type RedisClient } from '../../src/redis/client';
import { adoptArgs, claimArgs, couponKeys, loadArgs, parseClaimReply, parseStockReply, revokeArgs, stockArgs } from '../../src/redis/scripts';

let server: EmbeddedServer;
let redis: RedisClient;
let n = 0;

beforeAll(async () => {
  server = await startRedisServer();
  redis = createRedisClient({ kind: 'single', url: server.url }, { name: 'script-test', logger: createLogger('silent') });
  await redis.connect();
});

afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

async function loadedCoupon(total: number, window: { startsAt?: number; endsAt?: number } = {}, highest = 0, free: number[] = []) {
  const keys = couponKeys(`c${++n}`);
  const loaded = await redis.couponLoad(
    ...loadArgs(keys, { totalQuantity: total, startsAt: new Date(window.startsAt ?? 0), endsAt: window.endsAt ? new Date(window.endsAt) : null }, highest, free),
  );
  expect(loaded).toBe(1);
  return keys;
}

const claim = async (keys: ReturnType<typeof couponKeys>, user: string, issuanceId = `id-${user}-${Math.random()}`) =>
  parseClaimReply(await redis.couponClaim(...claimArgs(keys, user, issuanceId)));

test('a coupon without state answers NOT_LOADED and changes nothing', async () => {
  const keys = couponKeys('never-loaded');
  expect((await claim(keys, 'u')).status).toBe('NOT_LOADED');
  expect(await redis.exists(keys.meta, keys.winners, keys.pending)).toBe(0);
});

test('re-running a claim with the same issuance id (a re-sent command) reports ISSUED with the same issuance', async () => {
  const keys = await loadedCoupon(5);
  const first = await claim(keys, 'u', 'same-id');
  const resent = await claim(keys, 'u', 'same-id');
  expect(first).toMatchObject({ status: 'ISSUED', remaining: 4, pending: true });
  expect(resent).toMatchObject({ status: 'ISSUED', remaining: 4, winner: first.winner });
  expect((await claim(keys, 'u', 'another-request')).status).toBe('ALREADY_ISSUED');
});

test('stock never goes below zero and sequences run 1..total', async () => {
  const keys = await loadedCoupon(3);
  const replies = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((u) => claim(keys, u)));
  expect(replies.filter((r) => r.status === 'ISSUED').map((r) => r.winner!.sequence).sort()).toEqual([1, 2, 3]);
  expect(replies.filter((r) => r.status === 'SOLD_OUT')).toHaveLength(2);
  expect(parseStockReply(await redis.couponStock(...stockArgs(keys))).remaining).toBe(0);
});

test('the claim window is enforced with the Redis clock', async () => {
  const later = await loadedCoupon(3, { startsAt: Date.now() + 60_000 });
  expect((await claim(later, 'u')).status).toBe('NOT_STARTED');
  const over = await loadedCoupon(3, { startsAt: 0, endsAt: Date.now() - 1 });
  expect((await claim(over, 'u')).status).toBe('ENDED');
});

test('loading is a no-op when the state exists, and handed-back sequences are reused lowest first', async () => {
  const keys = await loadedCoupon(10, {}, 6, [2, 5]);
  expect(await redis.couponLoad(...loadArgs(keys, { totalQuantity: 99, startsAt: new Date(0), endsAt: null }, 0, []))).toBe(0);
  expect((await claim(keys, 'x')).winner!.sequence).toBe(2);
  expect((await claim(keys, 'y')).winner!.sequence).toBe(5);
  const next = await claim(keys, 'z');
  expect(next.winner!.sequence).toBe(7);
  expect(next.remaining).toBe(3);
});

test('adopting a stored issuance undoes the reservation and hands its sequence back; the stored one is checked in MongoDB before it is answered', async () => {
  const keys = await loadedCoupon(5);
  const reserved = (await claim(keys, 'u', 'fresh')).winner!;
  const stored = { sequence: 9, issuedAtMs: 1000, issuanceId: 'stored' };
  expect(await redis.couponAdopt(...adoptArgs(keys, 'u', reserved, stored))).toBe(1);
  // Read from MongoDB before the script, it may have been cancelled since: not answered straight from Redis.
  expect(await claim(keys, 'u', 'again')).toMatchObject({ status: 'ALREADY_ISSUED', winner: stored, pending: true });
  expect(parseStockReply(await redis.couponStock(...stockArgs(keys))).remaining).toBe(5);
  expect(await redis.couponAdopt(...adoptArgs(keys, 'u', reserved, stored))).toBe(0);
});

test('revoking drops the reservation without handing back its taken sequence, and records the holder', async () => {
  const keys = await loadedCoupon(5);
  const reserved = (await claim(keys, 'late', 'r1')).winner!;
  const holder = { sequence: reserved.sequence, issuedAtMs: 1, issuanceId: 'h' };
  expect(await redis.couponRevoke(...revokeArgs(keys, 'late', 'r1', 'holder', holder))).toBe(1);
  expect(await redis.hget(keys.winners, 'late')).toBeNull();
  expect((await claim(keys, 'holder')).status).toBe('ALREADY_ISSUED');
  expect((await claim(keys, 'late')).winner!.sequence).toBe(2);
});

test('a holder recorded by a revoke is not taken for durable: its claim goes to MongoDB first, where it may be cancelled by now', async () => {
  const keys = await loadedCoupon(5);
  const reserved = (await claim(keys, 'late', 'r1')).winner!;
  const holder = { sequence: reserved.sequence, issuedAtMs: 1, issuanceId: 'h' };
  await redis.couponRevoke(...revokeArgs(keys, 'late', 'r1', 'holder', holder));
  expect(await claim(keys, 'holder', 'h2')).toMatchObject({ status: 'ALREADY_ISSUED', winner: holder, pending: true });
});
