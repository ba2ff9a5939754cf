import { NEW_DOCUMENT_COST, ReadLimiter } from '../../src/access/read-limiter';

/** A clock the test moves by hand; starts 200 ms into a second. */
function manualClock(start = 1_700_000_000_200) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

describe('ReadLimiter', () => {
  test('an address past its budget is refused until the second is over, and spent() then says so before anything is charged', () => {
    const clock = manualClock();
    const limiter = new ReadLimiter({ costPerIp: 100, costPerUser: 0, newDocumentsPerIp: 0 }, clock.now);
    expect(limiter.charge('203.0.113.7', undefined, 60)).toBeUndefined();
    expect(limiter.spent('203.0.113.7')).toBeUndefined();
    expect(limiter.charge('203.0.113.7', undefined, 60)).toBe(800);
    clock.advance(300);
    expect(limiter.spent('203.0.113.7')).toBe(500);
    // Another address has a budget of its own.
    expect(limiter.charge('203.0.113.8', undefined, 60)).toBeUndefined();
    clock.advance(500);
    expect(limiter.spent('203.0.113.7')).toBeUndefined();
    expect(limiter.charge('203.0.113.7', undefined, 60)).toBeUndefined();
  });

  test('one user is held to the per-user budget whatever address it comes from', () => {
    const limiter = new ReadLimiter({ costPerIp: 1000, costPerUser: 100, newDocumentsPerIp: 0 }, manualClock().now);
    expect(limiter.charge('203.0.113.1', 'alice', 50)).toBeUndefined();
    expect(limiter.charge('203.0.113.2', 'alice', 50)).toBeUndefined();
    expect(limiter.charge('203.0.113.3', 'alice', 50)).toBe(800);
    expect(limiter.charge('203.0.113.3', 'bob', 50)).toBeUndefined();
  });

  test('addresses of one IPv6 /56 share a budget; a cost under 1 still counts 1', () => {
    const limiter = new ReadLimiter({ costPerIp: 2, costPerUser: 0, newDocumentsPerIp: 0 }, manualClock().now);
    expect(limiter.charge('2001:db8:1:2a00::1', undefined, 0.2)).toBeUndefined();
    expect(limiter.charge('2001:db8:1:2aff::9', undefined, 0.2)).toBeUndefined();
    expect(limiter.charge('2001:db8:1:2a42::5', undefined, 0.2)).toBeDefined();
  });

  test('new documents past their budget are refused and charge the address, which is then refused outright', () => {
    const limiter = new ReadLimiter({ costPerIp: NEW_DOCUMENT_COST + 10, costPerUser: 0, newDocumentsPerIp: 2 }, manualClock().now);
    expect(limiter.newDocument('198.51.100.1')).toBeUndefined();
    expect(limiter.newDocument('198.51.100.1')).toBeUndefined();
    expect(limiter.spent('198.51.100.1')).toBeUndefined();
    expect(limiter.newDocument('198.51.100.1')).toBe(800);
    expect(limiter.charge('198.51.100.1', undefined, 20)).toBe(800);
    expect(limiter.spent('198.51.100.1')).toBe(800);
  });

  test('with every budget at 0 nothing is counted or refused', () => {
    const limiter = new ReadLimiter({ costPerIp: 0, costPerUser: 0, newDocumentsPerIp: 0 }, manualClock().now);
    expect(limiter.enabled).toBe(false);
    for (let i = 0; i < 1000; i++) expect(limiter.charge('203.0.113.7', 'alice', 1e6)).toBeUndefined();
    expect(limiter.newDocument('203.0.113.7')).toBeUndefined();
  });
});
