import { judgeDrift } from '../../src/claims/reconciler';

const redis = (taken: number, winners = taken, pending = 0, loaded = true) => ({ loaded, taken, winners, pending });

describe('judging drift between a coupon’s Redis state and MongoDB', () => {
  test('counts that agree are in sync', () => {
    expect(judgeDrift(redis(5), 5)).toEqual({ kind: 'in-sync' });
    expect(judgeDrift(redis(0), 0)).toEqual({ kind: 'in-sync' });
  });

  test('nothing is judged while reservations await their write, however far apart the counts are', () => {
    expect(judgeDrift(redis(10, 10, 3), 2)).toEqual({ kind: 'undecided' });
    expect(judgeDrift(redis(10, 10, 1), 50)).toEqual({ kind: 'undecided' });
  });

  test('a coupon whose state is not in Redis is not judged', () => {
    expect(judgeDrift(redis(0, 0, 0, false), 7)).toEqual({ kind: 'undecided' });
  });

  test('MongoDB holding more issuances than Redis counts means Redis is behind', () => {
    expect(judgeDrift(redis(5), 6)).toEqual({ kind: 'drift', reason: 'redis_behind' });
  });

  test('Redis counting more taken sequences than MongoDB holds means stock leaked', () => {
    expect(judgeDrift(redis(8, 5), 5)).toEqual({ kind: 'drift', reason: 'redis_ahead' });
  });

  test('a winners hash that disagrees with the sequence count is drift even when the totals match', () => {
    expect(judgeDrift(redis(5, 4), 5)).toEqual({ kind: 'drift', reason: 'winners_mismatch' });
  });
});
