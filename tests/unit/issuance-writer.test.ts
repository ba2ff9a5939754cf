import { Types } from 'mongoose';
import type { Models } from '../../src/mongo/models';
import type { IssuanceRecord } from '../../src/coupons/coupon-model';
import { IssuanceWriter } from '../../src/claims/issuance-writer';

/** In-memory stand-in for the issuances collection with MongoDB's ordered-insert and unique-index behaviour. */
class FakeIssuances {
  docs: Array<{ _id: Types.ObjectId; couponId: Types.ObjectId; userId: string; sequence: number; issuedAt: Date }> = [];
  batches: number[] = [];
  failNext = false;

  async bulkWrite(ops: any[]) {
    this.batches.push(ops.length);
    if (this.failNext) {
      this.failNext = false;
      throw new Error('connection reset');
    }
    for (const { insertOne: { document } } of ops) {
      const clash = this.docs.some(
        (d) => d._id.equals(document._id) || (d.couponId.equals(document.couponId) && (d.userId === document.userId || d.sequence === document.sequence)),
      );
      if (clash) throw Object.assign(new Error('E11000 duplicate key'), { code: 11000 });
      this.docs.push(document);
    }
    return { insertedCount: ops.length };
  }

  findOne(query: { couponId: Types.ObjectId; userId?: string; sequence?: number }) {
    const found = this.docs.find(
      (d) => d.couponId.equals(query.couponId) && (query.userId === undefined || d.userId === query.userId) && (query.sequence === undefined || d.sequence === query.sequence),
    );
    return { lean: async () => found ?? null };
  }
}

const coupon = new Types.ObjectId().toHexString();
const record = (userId: string, sequence: number): IssuanceRecord => ({
  id: new Types.ObjectId().toHexString(),
  couponId: coupon,
  userId,
  sequence,
  issuedAt: new Date(),
  status: 'ACTIVE',
});

function writerWith(options: Partial<ConstructorParameters<typeof IssuanceWriter>[1]> = {}) {
  const issuances = new FakeIssuances();
  const writer = new IssuanceWriter({ Issuance: issuances } as unknown as Models, { windowMs: 5, maxBatch: 100, ...options });
  return { issuances, writer };
}

describe('group commit', () => {
  test('writes that arrive within the window go out as one batch, and each is answered', async () => {
    const { issuances, writer } = writerWith();
    const outcomes = await Promise.all(Array.from({ length: 30 }, (_, i) => writer.write(record(`u${i}`, i + 1))));
    expect(issuances.batches).toEqual([30]);
    expect(outcomes.every((o) => o.kind === 'written')).toBe(true);
  });

  test('a batch never exceeds the maximum size', async () => {
    const { issuances, writer } = writerWith({ maxBatch: 8 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => writer.write(record(`u${i}`, i + 1))));
    expect(Math.max(...issuances.batches)).toBeLessThanOrEqual(8);
    expect(issuances.batches.reduce((a, b) => a + b, 0)).toBe(20);
  });

  test('a failed batch rejects every write in it, and later writes still go through', async () => {
    const { issuances, writer } = writerWith();
    issuances.failNext = true;
    const failed = await Promise.allSettled([writer.write(record('a', 1)), writer.write(record('b', 2))]);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await expect(writer.write(record('c', 3))).resolves.toEqual({ kind: 'written' });
  });

  test('writing the same issuance twice is harmless, and the second write reports it as stored, a redeem since included', async () => {
    const { issuances, writer } = writerWith();
    const same = record('a', 1);
    expect(await writer.write(same)).toEqual({ kind: 'written' });
    Object.assign(issuances.docs[0]!, { status: 'REDEEMED', orderId: 'order-1' });
    expect(await writer.write(same)).toMatchObject({ kind: 'written', stored: { id: same.id, status: 'REDEEMED', orderId: 'order-1' } });
    expect(issuances.docs).toHaveLength(1);
  });

  test('a user who already holds another issuance gets that one reported, not a second copy', async () => {
    const { issuances, writer } = writerWith();
    const first = record('a', 1);
    await writer.write(first);
    const outcome = await writer.write(record('a', 2));
    expect(outcome).toMatchObject({ kind: 'user-holds', stored: { id: first.id, sequence: 1 } });
    expect(issuances.docs).toHaveLength(1);
  });

  test('a sequence held by someone else is reported for that write only; the rest of the batch lands', async () => {
    const { issuances, writer } = writerWith();
    await writer.write(record('holder', 1));
    const [taken, fine] = await Promise.all([writer.write(record('late', 1)), writer.write(record('other', 2))]);
    expect(taken).toMatchObject({ kind: 'sequence-taken', holder: { userId: 'holder' } });
    expect(fine).toEqual({ kind: 'written' });
    expect(issuances.docs.map((d) => d.userId).sort()).toEqual(['holder', 'other']);
  });

  test('a full queue refuses at once instead of growing', async () => {
    const { writer } = writerWith({ maxQueued: 2, windowMs: 50 });
    const accepted = [writer.write(record('a', 1)), writer.write(record('b', 2))];
    await expect(writer.write(record('c', 3))).rejects.toThrow(/queue is full/);
    await Promise.all(accepted);
  });

  test('drained resolves once nothing is queued or in flight', async () => {
    const { issuances, writer } = writerWith({ windowMs: 20 });
    const pending = writer.write(record('a', 1));
    await writer.drained();
    expect(issuances.docs).toHaveLength(1);
    await pending;
  });
});
