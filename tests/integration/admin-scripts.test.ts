import type { Redis } from 'ioredis';
import { startRedisServer, type EmbeddedServer } from '../../src/infra/embedded';
import { createLogger } from '../../src/logger';
import { createRedisClient } from '../../src/redis/client';
import { cancelArgs, claimArgs, couponKeys, defineArgs, loadArgs, parseClaimReply, parseDefineReply, parseStockReply, stockArgs } from '../../src/redis/scripts';

let server: EmbeddedServer;
let redis: Redis;
let n = 0;

beforeAll(async () => {
  server = await startRedisServer();
  redis = createRedisClient({ kind: 'single', url: server.url }, { name: 'admin-script-test', logger: createLogger('silent') }) as Redis;
  await redis.connect();
});

afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

async function loadedCoupon(total: number) {
  const keys = couponKeys(`a${++n}`);
  expect(await redis.couponLoad(...loadArgs(keys, { totalQuantity: total, startsAt: new Date(0), endsAt: null }, 0, []))).toBe(1);
  return keys;
}
const claim = async (keys: ReturnType<typeof couponKeys>, user: string) => parseClaimReply(await redis.couponClaim(...claimArgs(keys, user, `id-${user}`)));
const define = async (keys: ReturnType<typeof couponKeys>, total: number, mode: 'admin' | 'repair', holdMs = 0, endsAt: Date | null = null) =>
  parseDefineReply(await redis.couponDefine(...defineArgs(keys, { totalQuantity: total, startsAt: new Date(0), endsAt }, holdMs, mode)));
const remaining = async (keys: ReturnType<typeof couponKeys>) => parseStockReply(await redis.couponStock(...stockArgs(keys))).remaining;

describe('define-2.lua', () => {
  test('an admin total below the units taken is refused and changes nothing; at the units taken it closes the stock', async () => {
    const keys = await loadedCoupon(5);
    for (const user of ['a', 'b', 'c']) await claim(keys, user);
    expect(await define(keys, 2, 'admin')).toBe('below-taken');
    expect(await remaining(keys)).toBe(2);
    expect(await define(keys, 3, 'admin')).toBe('updated');
    expect((await claim(keys, 'd')).status).toBe('SOLD_OUT');
    expect(await define(keys, 4, 'admin')).toBe('updated');
    expect((await claim(keys, 'd')).status).toBe('ISSUED');
  });

  test('a new window applies to the next claim, and a hold keeps the reconciler from setting another until it expires', async () => {
    const keys = await loadedCoupon(5);
    expect(await define(keys, 5, 'admin', 300, new Date(Date.now() - 1000))).toBe('updated');
    expect((await claim(keys, 'late')).status).toBe('ENDED');
    expect(await define(keys, 5, 'repair')).toBe('held');
    expect((await claim(keys, 'late')).status).toBe('ENDED');
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(await define(keys, 5, 'repair')).toBe('updated');
    expect((await claim(keys, 'late')).status).toBe('ISSUED');
  });

  test('a state that is not loaded is never created', async () => {
    const keys = couponKeys('not-loaded-define');
    expect(await define(keys, 5, 'admin')).toBe('not-loaded');
    expect(await redis.exists(keys.meta)).toBe(0);
  });
});

describe('cancel-4.lua', () => {
  test("a cancel returns the unit once, and only while the user's entry is the cancelled issuance", async () => {
    const keys = await loadedCoupon(2);
    const won = await claim(keys, 'u');
    await claim(keys, 'v');
    expect(await remaining(keys)).toBe(0);
    expect(await redis.couponCancel(...cancelArgs(keys, 'u', 'some-other-id', won.winner!.sequence))).toBe(0);
    expect(await redis.couponCancel(...cancelArgs(keys, 'u', won.winner!.issuanceId, won.winner!.sequence))).toBe(1);
    expect(await remaining(keys)).toBe(1);
    expect(await redis.couponCancel(...cancelArgs(keys, 'u', won.winner!.issuanceId, won.winner!.sequence))).toBe(0);
    expect(await remaining(keys)).toBe(1);
    expect(await redis.zcard(keys.pending)).toBe(1);
    // The canceller claims again like anyone and gets the returned sequence.
    const again = await claim(keys, 'u');
    expect(again).toMatchObject({ status: 'ISSUED', remaining: 0, winner: { sequence: won.winner!.sequence } });
  });
});
