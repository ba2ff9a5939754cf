import { Types } from 'mongoose';
import type { Models } from '../../src/mongo/models';
import { createLogger } from '../../src/logger';
import type { CouponDefinition } from '../../src/coupons/coupon-model';
import { SoldOutMemory } from '../../src/claims/sold-out-memory';

const couponId = new Types.ObjectId().toHexString();
const coupon = (endsAt: Date | null = null): CouponDefinition => ({ id: couponId, name: 'c', totalQuantity: 2, startsAt: new Date(0), endsAt, redeemBy: null });
const stored = (userId: string, sequence: number) => ({ _id: new Types.ObjectId(), couponId: new Types.ObjectId(couponId), userId, sequence, issuedAt: new Date(1000) });

function memoryWith(issuances: ReturnType<typeof stored>[], stock: () => Promise<{ remaining: number }>) {
  let now = 10_000;
  const models = { Issuance: { find: () => ({ lean: async () => issuances }) } } as unknown as Models;
  const memory = new SoldOutMemory(models, { stock }, createLogger('silent'), () => now);
  return { memory, advance: (ms: number) => (now += ms) };
}

describe('sold-out memory', () => {
  test('a coupon whose every unit is in MongoDB is answered SOLD_OUT, and its winners ALREADY_ISSUED with their issuance', async () => {
    const { memory } = memoryWith([stored('ann', 1), stored('bob', 2)], async () => ({ remaining: 0 }));
    await memory.learn(coupon());
    expect(memory.answer(couponId, 'carl')).toEqual({ status: 'SOLD_OUT', issuance: null, remaining: 0 });
    expect(memory.answer(couponId, 'bob')).toMatchObject({ status: 'ALREADY_ISSUED', issuance: { userId: 'bob', sequence: 2 } });
  });

  test('a coupon with fewer issuances in MongoDB than its stock is not remembered (a write may still be in flight)', async () => {
    const { memory } = memoryWith([stored('ann', 1)], async () => ({ remaining: 0 }));
    await memory.learn(coupon());
    expect(memory.answer(couponId, 'carl')).toBeUndefined();
  });

  test('an ended coupon is answered ENDED, as the claim script would', async () => {
    const { memory } = memoryWith([stored('ann', 1), stored('bob', 2)], async () => ({ remaining: 0 }));
    await memory.learn(coupon(new Date(5000)));
    expect(memory.answer(couponId, 'carl')).toEqual({ status: 'ENDED', issuance: null, remaining: 0 });
  });

  test('stock back in Redis ends the shortcut; a failed Redis read keeps it', async () => {
    let read: () => Promise<{ remaining: number }> = async () => {
      throw new Error('Command timed out');
    };
    const { memory } = memoryWith([stored('ann', 1), stored('bob', 2)], () => read());
    await memory.learn(coupon());
    await memory.check();
    expect(memory.answer(couponId, 'carl')?.status).toBe('SOLD_OUT');
    read = async () => ({ remaining: 1 });
    await memory.check();
    expect(memory.answer(couponId, 'carl')).toBeUndefined();
  });

  test('a coupon nobody claims for a minute is forgotten', async () => {
    const { memory, advance } = memoryWith([stored('ann', 1), stored('bob', 2)], async () => ({ remaining: 0 }));
    await memory.learn(coupon());
    advance(61_000);
    await memory.check();
    expect(memory.size).toBe(0);
  });
});
