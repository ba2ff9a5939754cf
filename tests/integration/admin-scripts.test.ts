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
type Mode = 'hold' | 'commit' | 'undo' | 'repair';
/** define-2.lua at revision `revision` (the loaded coupons are at revision 0). */
const define = async (keys: ReturnType<typeof couponKeys>, total: number, mode: Mode, options: { holdMs?: number; endsAt?: Date | null; revision?: number; token?: string } = {}) =>
  parseDefineReply(
    await redis.couponDefine(
      ...defineArgs(keys, { totalQuantity: total, startsAt: new Date(0), endsAt: options.endsAt ?? null, revision: options.revision ?? 0 }, options.holdMs ?? 5000, mode, options.token ?? 't'),
    ),
  );
const remaining = async (keys: ReturnType<typeof couponKeys>) => parseStockReply(await redis.couponStock(...stockArgs(keys))).remaining;
const totalOf = async (keys: ReturnType<typeof couponKeys>) => Number(await redis.hget(keys.meta, 'total'));

describe('define-2.lua', () => {
  test('a hold with a total below the units taken is refused and changes nothing; at the units taken it closes the stock', async () => {
    const keys = await loadedCoupon(5);
    for (const user of ['a', 'b', 'c']) await claim(keys, user);
    expect(await define(keys, 2, 'hold')).toBe('below-taken');
    expect(await remaining(keys)).toBe(2);
    expect(await define(keys, 3, 'hold')).toBe('updated');
    expect((await claim(keys, 'd')).status).toBe('SOLD_OUT');
    expect(await define(keys, 4, 'commit', { revision: 1 })).toBe('updated');
    expect((await claim(keys, 'd')).status).toBe('ISSUED');
  });

  test('a hold with a total below a live sequence is refused, even when the units taken fit', async () => {
    const keys = await loadedCoupon(4);
    const won: Array<ReturnType<typeof parseClaimReply>> = [];
    for (const user of ['a', 'b', 'c', 'd']) won.push(await claim(keys, user));
    // Sequences 1 and 2 cancelled: 2 units taken, but 3 and 4 are live.
    for (const [i, user] of ['a', 'b'].entries()) await redis.couponCancel(...cancelArgs(keys, user, won[i]!.winner!.issuanceId, won[i]!.winner!.sequence));
    expect(await define(keys, 2, 'hold')).toBe('below-sequence');
    expect(await define(keys, 3, 'hold')).toBe('below-sequence');
    expect(await totalOf(keys)).toBe(4);
    expect(await define(keys, 4, 'hold')).toBe('updated');
  });

  test('one hold at a time: another change is busy until it commits, and an older revision never replaces a newer one', async () => {
    const keys = await loadedCoupon(10);
    expect(await define(keys, 5, 'hold', { token: 'first' })).toBe('updated');
    expect(await define(keys, 7, 'hold', { token: 'second' })).toBe('busy');
    expect(await define(keys, 5, 'commit', { revision: 1 })).toBe('updated');
    // A late commit of the change that lost, or a repeated one: stale.
    expect(await define(keys, 50, 'commit', { revision: 1 })).toBe('stale');
    expect(await define(keys, 50, 'repair', { revision: 0 })).toBe('stale');
    expect(await define(keys, 7, 'hold', { token: 'second', revision: 0 })).toBe('stale');
    expect(await define(keys, 7, 'hold', { token: 'second', revision: 1 })).toBe('updated');
    expect(await totalOf(keys)).toBe(7);
  });

  test('a widening commit on a newer revision takes over from a hold that lost its compare-and-set, whose undo then does nothing', async () => {
    const keys = await loadedCoupon(10);
    expect(await define(keys, 5, 'hold', { token: 'lowering' })).toBe('updated');
    expect(await define(keys, 50, 'commit', { revision: 1 })).toBe('updated');
    expect(await define(keys, 10, 'undo', { token: 'lowering' })).toBe('stale');
    expect(await totalOf(keys)).toBe(50);
  });

  test('a commit of the revision a hold was computed from keeps the narrowed definition', async () => {
    const keys = await loadedCoupon(10);
    // The hold was computed from revision 1 (MongoDB had it), whose own commit arrives late.
    expect(await define(keys, 5, 'hold', { token: 'lowering', revision: 1 })).toBe('updated');
    expect(await define(keys, 50, 'commit', { revision: 1 })).toBe('stale');
    expect(await totalOf(keys)).toBe(5);
    // Its compare-and-set lost: the undo puts back revision 1's definition.
    expect(await define(keys, 50, 'undo', { token: 'lowering', revision: 1 })).toBe('updated');
    expect(await totalOf(keys)).toBe(50);
  });

  test('a new window applies to the next claim, and a hold keeps the reconciler from setting another until it expires', async () => {
    const keys = await loadedCoupon(5);
    expect(await define(keys, 5, 'hold', { holdMs: 300, endsAt: new Date(Date.now() - 1000) })).toBe('updated');
    expect((await claim(keys, 'late')).status).toBe('ENDED');
    expect(await define(keys, 5, 'repair')).toBe('held');
    expect((await claim(keys, 'late')).status).toBe('ENDED');
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(await define(keys, 5, 'repair')).toBe('updated');
    expect((await claim(keys, 'late')).status).toBe('ISSUED');
  });

  test('a state that is not loaded is never created', async () => {
    const keys = couponKeys('not-loaded-define');
    expect(await define(keys, 5, 'hold')).toBe('not-loaded');
    expect(await define(keys, 5, 'commit', { revision: 3 })).toBe('not-loaded');
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
