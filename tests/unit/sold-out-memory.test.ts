import { Types } from 'mongoose';
import type { Models } from '../../src/mongo/models';
import { createLogger } from '../../src/logger';
import type { CouponDefinition, IssuanceRecord } from '../../src/coupons/coupon-model';
import type { SoldOutState, WinnerEntry } from '../../src/redis/scripts';
import { MAX_UNVERIFIED_MS, SoldOutMemory } from '../../src/claims/sold-out-memory';

const couponId = new Types.ObjectId().toHexString();
const coupon = (endsAt: Date | null = null): CouponDefinition => ({ id: couponId, name: 'c', totalQuantity: 2, startsAt: new Date(0), endsAt, redeemBy: null });
const ids = { ann: new Types.ObjectId().toHexString(), bob: new Types.ObjectId().toHexString(), carl: new Types.ObjectId().toHexString() };
const entry = (user: keyof typeof ids, sequence: number, durable = true): WinnerEntry => ({ sequence, issuedAtMs: 1000, issuanceId: ids[user], durable });

interface World {
  /** Redis: the coupon's position and winners. */
  redis: { remaining: number; epoch: number; version: number; winners: Map<string, WinnerEntry>; pending: Set<string> };
  redisDown: boolean;
  /** MongoDB: the live issuances of the coupon. */
  live: Array<{ _id: Types.ObjectId; couponId: Types.ObjectId; userId: string; sequence: number; issuedAt: Date }>;
  mongoDown: boolean;
}

const stored = (user: keyof typeof ids, sequence: number) => ({ _id: new Types.ObjectId(ids[user]), couponId: new Types.ObjectId(couponId), userId: user, sequence, issuedAt: new Date(1000) });

function memoryIn(world: World, hold?: { state: Promise<void> }) {
  let now = 10_000;
  const down = (flag: boolean) => {
    if (flag) throw new Error('Command timed out');
  };
  const models = {
    Issuance: {
      find: (filter: { _id?: { $in: Types.ObjectId[] } }) => ({
        lean: async () => {
          down(world.mongoDown);
          const wanted = filter._id?.$in.map(String);
          return world.live.filter((doc) => !wanted || wanted.includes(String(doc._id)));
        },
      }),
      countDocuments: async () => {
        down(world.mongoDown);
        return world.live.length;
      },
    },
  } as unknown as Models;
  const source = {
    stock: async () => {
      down(world.redisDown);
      const { remaining, epoch, version } = world.redis;
      return { remaining, epoch, version };
    },
    soldOutState: async (): Promise<SoldOutState> => {
      down(world.redisDown);
      // What Redis held when the read was made, delivered when the test lets it go.
      const read = { ...world.redis, winners: new Map(world.redis.winners), pending: new Set(world.redis.pending) };
      await hold?.state;
      return { loaded: true, ...read, soldOut: read.remaining === 0 };
    },
  };
  const memory = new SoldOutMemory(models, source, createLogger('silent'), () => now);
  return { memory, advance: (ms: number) => (now += ms) };
}

function soldOutWorld(): World {
  return {
    redis: { remaining: 0, epoch: 1, version: 2, winners: new Map([['ann', entry('ann', 1)], ['bob', entry('bob', 2)]]), pending: new Set() },
    redisDown: false,
    live: [stored('ann', 1), stored('bob', 2)],
    mongoDown: false,
  };
}

describe('sold-out memory', () => {
  test('a sold-out coupon is answered SOLD_OUT, and its durable winners ALREADY_ISSUED with their issuance', async () => {
    const { memory } = memoryIn(soldOutWorld());
    expect(await memory.learn(coupon())).toBe(true);
    expect(memory.answer(couponId, 'carl')).toEqual({ status: 'SOLD_OUT', issuance: null, remaining: 0 });
    expect(memory.answer(couponId, 'bob')).toMatchObject({ status: 'ALREADY_ISSUED', issuance: { id: ids.bob, userId: 'bob', sequence: 2 } });
  });

  test('a winner Redis lost (a promoted replica without the last writes) is never told SOLD_OUT: MongoDB holding more than Redis knows keeps the coupon out of memory', async () => {
    const world = soldOutWorld();
    // Redis (the promoted replica) knows ann alone; MongoDB holds ann and carl, whose write the replica lacks.
    world.redis.winners = new Map([['ann', entry('ann', 1)]]);
    world.live = [stored('ann', 1), stored('carl', 2)];
    const { memory } = memoryIn(world);
    expect(await memory.learn(coupon())).toBe(false);
    expect(memory.answer(couponId, 'carl')).toBeUndefined();
  });

  test('a winner whose write is still pending is never told SOLD_OUT: its claim goes to Redis, until MongoDB holds it', async () => {
    const world = soldOutWorld();
    world.redis.winners.set('bob', entry('bob', 2, false));
    world.redis.pending.add('bob');
    world.live = [stored('ann', 1)];
    const { memory } = memoryIn(world);
    await memory.learn(coupon());
    expect(memory.answer(couponId, 'carl')?.status).toBe('SOLD_OUT');
    expect(memory.answer(couponId, 'bob')).toBeUndefined();
    // The group commit wrote it on this instance.
    memory.durable(couponId, 'bob', { id: ids.bob, couponId, userId: 'bob', sequence: 2, issuedAt: new Date(1000), status: 'ACTIVE' } as IssuanceRecord);
    expect(memory.answer(couponId, 'bob')).toMatchObject({ status: 'ALREADY_ISSUED', issuance: { id: ids.bob } });
  });

  test('pending winners written by another instance are learned by the check itself, with no claim in between, even with Redis down', async () => {
    const world = soldOutWorld();
    world.redis.winners.set('bob', entry('bob', 2, false));
    world.redis.pending.add('bob');
    world.live = [stored('ann', 1)];
    const { memory } = memoryIn(world);
    await memory.learn(coupon());
    expect(memory.pendingOf(couponId)).toEqual(['bob']);
    // Written and confirmed elsewhere (confirm-2 does not move the position); Redis then stops.
    world.live.push(stored('bob', 2));
    world.redisDown = true;
    await memory.check();
    expect(memory.answer(couponId, 'bob')).toMatchObject({ status: 'ALREADY_ISSUED', issuance: { id: ids.bob } });
  });

  test('a learn already reading when a change is announced (forget) is thrown away, not stored with the old winners', async () => {
    let release = () => {};
    const hold = { state: new Promise<void>((resolve) => (release = resolve)) };
    const { memory } = memoryIn(soldOutWorld(), hold);
    const learning = memory.learn(coupon());
    await new Promise((resolve) => setImmediate(resolve));
    memory.forget(couponId); // ann's issuance was cancelled meanwhile
    release();
    expect(await learning).toBe(false);
    expect(memory.answer(couponId, 'ann')).toBeUndefined();
    expect(memory.size).toBe(0);
  });

  test('a stock position that moved is noticed although remaining is 0 again (a missed coupon-changed: a unit returned and won again)', async () => {
    const world = soldOutWorld();
    const { memory } = memoryIn(world);
    await memory.learn(coupon());
    // ann cancelled, carl won her unit: two scripts moved the position, remaining is 0 again.
    world.redis.winners.delete('ann');
    world.redis.winners.set('carl', entry('carl', 1));
    world.redis.version = 4;
    world.live = [stored('bob', 2), stored('carl', 1)];
    await memory.check();
    // Learned again at the new position: carl is a winner, ann is not.
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(memory.answer(couponId, 'carl')).toMatchObject({ status: 'ALREADY_ISSUED', issuance: { id: ids.carl } });
    expect(memory.answer(couponId, 'ann')?.status).toBe('SOLD_OUT');
  });

  test('a cancel Redis never heard of is noticed from MongoDB within a second, however many claims keep the entry in use', async () => {
    const world = soldOutWorld();
    const { memory, advance } = memoryIn(world);
    await memory.learn(coupon());
    world.live = [stored('bob', 2)]; // ann cancelled in MongoDB; the Redis step failed
    // Claims every 100 ms keep it in use; the checks run every 500 ms.
    for (let ms = 100; ms <= 1000; ms += 100) {
      advance(100);
      memory.answer(couponId, 'carl');
      if (ms % 500 === 0) await memory.check();
    }
    expect(memory.answer(couponId, 'ann')).toBeUndefined();
    expect(memory.size).toBe(0);
  });

  test('with Redis down, MongoDB keeps the entry verified; with both down it stops answering after a bound', async () => {
    const world = soldOutWorld();
    const { memory, advance } = memoryIn(world);
    await memory.learn(coupon());
    world.redisDown = true;
    for (let i = 0; i < 20; i++) {
      advance(500);
      await memory.check();
    }
    expect(memory.answer(couponId, 'carl')?.status).toBe('SOLD_OUT');
    world.mongoDown = true;
    advance(MAX_UNVERIFIED_MS + 1);
    await memory.check();
    expect(memory.answer(couponId, 'carl')).toBeUndefined();
  });

  test('an ended coupon is answered ENDED, as the claim script would', async () => {
    const { memory } = memoryIn(soldOutWorld());
    await memory.learn(coupon(new Date(5000)));
    expect(memory.answer(couponId, 'carl')).toEqual({ status: 'ENDED', issuance: null, remaining: 0 });
  });

  test('stock back in Redis ends the shortcut; a failed Redis read keeps it', async () => {
    const world = soldOutWorld();
    const { memory } = memoryIn(world);
    await memory.learn(coupon());
    world.redisDown = true;
    await memory.check();
    expect(memory.answer(couponId, 'carl')?.status).toBe('SOLD_OUT');
    world.redisDown = false;
    world.redis.remaining = 1;
    world.redis.version = 3;
    await memory.check();
    expect(memory.answer(couponId, 'carl')).toBeUndefined();
  });

  test('a win at a later stock position than the remembered one ends the shortcut at once', async () => {
    const { memory } = memoryIn(soldOutWorld());
    await memory.learn(coupon());
    memory.won(coupon(), 1); // a reply from before the sell-out, read late
    expect(memory.size).toBe(1);
    memory.won(coupon(), 3);
    expect(memory.answer(couponId, 'carl')).toBeUndefined();
  });

  test('a coupon nobody claims for a minute is forgotten', async () => {
    const { memory, advance } = memoryIn(soldOutWorld());
    await memory.learn(coupon());
    advance(61_000);
    await memory.check();
    expect(memory.size).toBe(0);
  });
});
