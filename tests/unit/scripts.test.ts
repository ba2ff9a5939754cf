import { claimArgs, couponKeys, decodeWinner, encodeWinner, loadArgs, parseClaimReply, parseStockReply, ScriptReplyError } from '../../src/redis/scripts';

describe('coupon keys and script arguments', () => {
  test('every key of a coupon shares its hash tag, so scripts run on Redis Cluster', () => {
    const keys = Object.values(couponKeys('abc'));
    expect(keys).toHaveLength(4);
    for (const key of keys) expect(key).toMatch(/^coupon:\{abc\}:/);
  });

  test('claim arguments are the four keys, then user and issuance id', () => {
    expect(claimArgs(couponKeys('c'), 'u', 'i')).toEqual(['coupon:{c}:meta', 'coupon:{c}:winners', 'coupon:{c}:pending', 'coupon:{c}:free', 'u', 'i']);
  });

  test('load arguments carry the window in epoch ms and 0 for no end, then the revision (-1 when unknown)', () => {
    const args = loadArgs(couponKeys('c'), { totalQuantity: 5, startsAt: new Date(1000), endsAt: null }, 3, [2]);
    expect(args.slice(4)).toEqual([5, 1000, 0, 3, -1, 2]);
    expect(loadArgs(couponKeys('c'), { totalQuantity: 5, startsAt: new Date(1000), endsAt: null, revision: 4 }, 3, []).slice(4)).toEqual([5, 1000, 0, 3, 4]);
  });

  test('a winner entry survives encoding, including ids with colons', () => {
    const entry = { sequence: 7, issuedAtMs: 1_700_000_000_000, issuanceId: 'a:b' };
    expect(decodeWinner(encodeWinner(entry))).toEqual(entry);
    expect(() => decodeWinner('garbage')).toThrow(ScriptReplyError);
  });

  test('a winner entry MongoDB is known to hold is marked durable', () => {
    const entry = { sequence: 7, issuedAtMs: 1_700_000_000_000, issuanceId: 'abc', durable: true };
    expect(encodeWinner(entry)).toBe('=7:1700000000000:abc');
    expect(decodeWinner(encodeWinner(entry))).toEqual(entry);
  });
});

describe('script replies', () => {
  test('a win carries the issuance and the pending flag', () => {
    expect(parseClaimReply(['ISSUED', 9, 3, 1, 1000, 'id1', 1, 0])).toEqual({
      status: 'ISSUED',
      remaining: 9,
      version: 3,
      winner: { sequence: 1, issuedAtMs: 1000, issuanceId: 'id1' },
      pending: true,
      suspect: false,
    });
  });

  test('a loss carries no issuance', () => {
    expect(parseClaimReply(['SOLD_OUT', 0, 3, 0, 0, '', 0, 0]).winner).toBeUndefined();
  });

  test('a loss from a state that lost winner entries is flagged suspect', () => {
    expect(parseClaimReply(['SOLD_OUT', 0, 3, 0, 0, '', 0, 1]).suspect).toBe(true);
  });

  test.each([[null], [['WHAT', 0, 0, 0, 0, '', 0]], [['ISSUED', '9', 3, 1, 1, 'x', 1]], [['ISSUED']]])('a malformed claim reply %j is refused', (reply) => {
    expect(() => parseClaimReply(reply)).toThrow(ScriptReplyError);
  });

  test('stock replies are checked too', () => {
    expect(parseStockReply([1, 10, 4, 123, 6])).toEqual({ loaded: true, total: 10, remaining: 4, epoch: 123, version: 6 });
    expect(() => parseStockReply([1, 10, 4])).toThrow(ScriptReplyError);
  });
});
