import { Types } from 'mongoose';
import { drawIssuanceId, memberOf, parseMember, sequencesFor } from '../../src/draw/ranking';
import { parseCloseReply, parseEnterReply } from '../../src/redis/draw-scripts';

describe('the draw\'s deterministic parts', () => {
  test('a member is the rank key then the user id, and parses back (user ids with colons included)', () => {
    const key = 'a'.repeat(64);
    expect(parseMember(memberOf(key, 'user:with:colons'))).toEqual({ rankKey: key, userId: 'user:with:colons' });
  });

  test('winners take handed-back sequences first, then the ones after the highest, in ranking order', () => {
    expect(sequencesFor(0, [], 3)).toEqual([1, 2, 3]);
    expect(sequencesFor(10, [7, 3], 4)).toEqual([3, 7, 11, 12]);
    expect(sequencesFor(10, [7, 3], 1)).toEqual([3]);
  });

  test('a winner\'s issuance id is a valid ObjectId, the same on every run, dated at the window\'s end', () => {
    const id = drawIssuanceId('6745f3c2a1b2c3d4e5f60718', 'ann', Date.UTC(2026, 2, 1, 9, 0, 1, 500));
    expect(id).toBe(drawIssuanceId('6745f3c2a1b2c3d4e5f60718', 'ann', Date.UTC(2026, 2, 1, 9, 0, 1, 500)));
    expect(id).not.toBe(drawIssuanceId('6745f3c2a1b2c3d4e5f60718', 'bob', Date.UTC(2026, 2, 1, 9, 0, 1, 500)));
    expect(new Types.ObjectId(id).getTimestamp().toISOString()).toBe('2026-03-01T09:00:01.000Z');
  });

  test('script replies are shape-checked', () => {
    expect(parseEnterReply(['ENTERED', 1])).toEqual({ status: 'ENTERED', added: true });
    expect(() => parseEnterReply(['WHAT', 1])).toThrow(/draw enter reply/);
    expect(parseCloseReply(['OK', 2, 5, 10, '7,3', 40, 0, 0])).toMatchObject({ status: 'OK', fence: 2, units: 5, baseSeq: 10, freeSeqs: [3, 7], entrants: 40, applied: false });
    expect(() => parseCloseReply(['OK', 2])).toThrow(/draw close reply/);
  });
});
